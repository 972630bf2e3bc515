"""Checks Kubernetes objects (kubectl's JSON output, one object after another on standard
input) against the API's types as the Kubernetes Python client generates them from the
OpenAPI spec: every field known to its type, every value of its field's type, every
required field there. Prints one line per fault; exit status 1 when there is any."""
import json
import sys

import kubernetes.client as k8s
from kubernetes.client import ApiClient

TYPES = {
    ("v1", "Namespace"): "V1Namespace",
    ("v1", "ServiceAccount"): "V1ServiceAccount",
    ("apps/v1", "DaemonSet"): "V1DaemonSet",
}
SCALARS = {"str": str, "int": int, "bool": bool, "float": (int, float)}
faults = []


def walk(value, typ, path):
    if typ in SCALARS:
        ok = isinstance(value, SCALARS[typ]) and not (typ == "int" and isinstance(value, bool))
        if not ok:
            faults.append(f"{path}: {value!r} is not a {typ}")
    elif typ in ("object", "datetime", "date"):
        pass
    elif typ.startswith("list["):
        if not isinstance(value, list):
            faults.append(f"{path}: not a list")
            return
        for i, v in enumerate(value):
            walk(v, typ[5:-1], f"{path}[{i}]")
    elif typ.startswith("dict("):
        if not isinstance(value, dict):
            faults.append(f"{path}: not a map")
            return
        inner = typ[typ.index(",") + 1 : -1].strip()
        for key, v in value.items():
            walk(v, inner, f"{path}.{key}")
    else:
        cls = getattr(k8s, typ)
        if not isinstance(value, dict):
            faults.append(f"{path}: not an object ({typ})")
            return
        fields = {json_name: attr for attr, json_name in cls.attribute_map.items()}
        for key, v in value.items():
            if key not in fields:
                faults.append(f"{path}.{key}: no such field in {typ}")
            else:
                walk(v, cls.openapi_types[fields[key]], f"{path}.{key}")


text = sys.stdin.read()
decoder = json.JSONDecoder()
pos, objects = 0, []
while pos < len(text):
    if text[pos].isspace():
        pos += 1
        continue
    obj, pos = decoder.raw_decode(text, pos)
    objects.append(obj)
for obj in objects:
    key = (obj.get("apiVersion"), obj.get("kind"))
    name = f"{key[1]}/{obj.get('metadata', {}).get('name')}"
    typ = TYPES.get(key)
    if typ is None:
        faults.append(f"{name}: unexpected {key}")
        continue
    walk(obj, typ, name)
    try:
        # The models refuse a missing required field.
        ApiClient()._ApiClient__deserialize(obj, typ)
    except (ValueError, TypeError) as e:
        faults.append(f"{name}: {e}")
for f in faults:
    print(f)
print(f"{len(objects)} objects, {len(faults)} faults", file=sys.stderr)
sys.exit(1 if faults or not objects else 0)
