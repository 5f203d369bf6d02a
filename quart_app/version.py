SERVICE_NAME = "voice-backend"
VERSION = "0.1.0"
