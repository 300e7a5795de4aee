"""Built-in emulator: an offline upstream server speaking the OpenAI Videos API."""
