"""A stand-in for a third-party package, vendored with the app."""
import sys


def hello(name):
    return "Hello from %s on python %d.%d" % (name, sys.version_info[0], sys.version_info[1])
