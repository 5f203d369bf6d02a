"""The voice to-do assistant, transport-free: the to-do service (todos.py), the function tools over it
(tools.py), the chat agent with bounded memory (agent.py), speech in and out (speech.py), and the feature that
holds them (feature.py). REST, the `/voice` namespace and the Twilio classic flow all go through it."""
