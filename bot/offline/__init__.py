"""An offline world: a loopback Telegram Bot API and a DashScope emulator, over real sockets.

The playground (``python -m bot playground``) and the tests run the real bot against them. Never
imported by the bot's request path: only the playground, the tests and the benchmarks reach here.
"""
