"""Trading app: customers, accounts, instruments, quotes and orders over a JSON API."""
