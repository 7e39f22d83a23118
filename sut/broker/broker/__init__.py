"""Broker project package.

PyMySQL is registered as ``MySQLdb`` here, before Django's MySQL backend is
imported, so the server/test venv needs no C compiler or libmysqlclient: it is
built only from wheels listed in requirements.txt.

Django 5.2 refuses ``MySQLdb`` older than mysqlclient 1.4.3 (it reads
``MySQLdb.version_info``). PyMySQL >= 1.1 already reports a mysqlclient-
compatible ``version_info`` (PyMySQL 1.2.4 says 2.2.8), so no version shim is
needed; requirements.txt pins PyMySQL>=1.1 for that reason.
"""

import pymysql

pymysql.install_as_MySQLdb()
