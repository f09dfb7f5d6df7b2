"""The sans-IO protocol core: bytes and objects in, bytes and objects out.

Nothing in this package opens a socket, touches the file system or imports
asyncio. The server and client are thin adapters around it.
"""
