"""The playground: ``python -m bot playground`` runs the real bot against the offline world
(bot/offline) and serves a Telegram-like chat page to try it by hand. Never imported by the bot's
request path: ``python -m bot`` loads it only for the ``playground`` command."""
