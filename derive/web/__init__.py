"""A local web page for derive: ``derive serve`` (needs ``pip install 'derive[web]'``).

The server is :func:`derive.web.app.create_app`; the command is
:func:`derive.web.serve.main`. Importing this package needs no web extra.
"""
