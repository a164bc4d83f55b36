"""Reliability and security suite: the running service attacked the way production will be.

``load`` drives a real gunicorn with concurrent clients and records what each request got back;
``proxy`` is a loopback TCP relay a test can cut, to lose the database under a live server.
The tests are in ``faults/tests``; SECURITY.md says which promise each of them checks.
"""
