"""Serializers schemathesis lacks for intake's request bodies.

NDJSON (`application/x-ndjson`): the schema of one line is documented; a
generated value (one object, or a list of them) is sent one JSON document per
line.
"""

import json

import schemathesis


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx, value):
    items = value if isinstance(value, list) else [value]
    return "".join(json.dumps(item) + "\n" for item in items).encode()
