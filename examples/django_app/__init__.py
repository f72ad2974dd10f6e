"""A minimal Django project that takes emit.run pushes: see asgi.py."""
