"""The wire: the only package that imports the generated protobuf code (with the transports, which
speak it). Messages come in here and leave as plain types (RawFrame from frames.py; the session's
settings from the hello), and the engine's plain results go out as SessionResponse messages
(responses.py). Everything between — protocol, features, engine, policies — takes plain types."""
