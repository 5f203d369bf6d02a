"""Authentication: API keys, PINs, Auth0 tokens, and the guards shared by REST and sockets."""
