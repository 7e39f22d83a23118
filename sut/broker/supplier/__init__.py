"""Supplier app: a tiny upstream price service that trading consumes over HTTP.

It lives in the same project only so one server can play both roles; trading
never imports it, and a deployment can point BROKER_SUPPLIER_URL elsewhere.
"""
