"""Realtime phone calls: a Twilio Media Stream relayed to a speech-to-speech provider (CallSession), and the
feature that tracks every live call of this process (RealtimeCalls)."""
