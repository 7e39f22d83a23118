"""Layer-1 tests: Django TestCase classes against a real MySQL/MariaDB test database."""
