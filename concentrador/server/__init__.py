"""The aiohttp adapter for the server side of CPCSCC."""
