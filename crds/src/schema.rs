//! Hand-written schema fragments for what schemars cannot say in OpenAPI v3.0 terms.

use schemars::{Schema, SchemaGenerator, json_schema};

/// A Kubernetes quantity that must be greater than zero. Written as int-or-string so
/// `capacity: 100Gi` and `capacity: 5` both work. `minimum` only constrains integers and
/// `pattern` only strings, so side by side they bound each form without typed branches
/// (which structural schemas forbid).
pub fn positive_quantity(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "x-kubernetes-int-or-string": true,
        "minimum": 1,
        "pattern": POSITIVE_QUANTITY
    })
}

/// A StorageNode sector size: a power of two from 64Mi to 1Gi. The bounds come from the
/// storage seal (depin-proof `MIN_SECTOR_BYTES`/`MAX_SECTOR_BYTES`): below 64 MiB the seal's
/// work no longer fits its pass cap, above 1 GiB packing and its check would hold more than
/// 1 GiB in memory. Integers are bounded by `minimum`/`maximum`, strings by `pattern`
/// (named sizes, or 8–10 plain digits); the operator refuses digits that are not a power of
/// two in range, naming `spec.sectorSize` (Kubernetes 1.20 has no CEL to say it here).
pub fn optional_sector_size(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "x-kubernetes-int-or-string": true,
        "nullable": true,
        "minimum": 67108864,
        "maximum": 1073741824,
        "pattern": SECTOR_SIZE
    })
}

/// Named power-of-two sector sizes, or plain digits the operator checks.
const SECTOR_SIZE: &str = r"^(64Mi|128Mi|256Mi|512Mi|1024Mi|1Gi|[0-9]{8,10})$";

/// A Kubernetes quantity with at least one non-zero digit (so "0", "0Gi", "0.0" fail).
const POSITIVE_QUANTITY: &str = r"^\+?([0-9]*[1-9][0-9]*(\.[0-9]*)?|[0-9]*\.[0-9]*[1-9][0-9]*)([KMGTPE]i|[numkMGTPE]|[eE][+-]?[0-9]+)?$";

/// A conditions list that server-side apply merges by `type` instead of replacing whole.
pub fn conditions(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "array",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["type"],
        "items": {
            "type": "object",
            "required": ["type", "status", "lastTransitionTime", "reason", "message"],
            "properties": {
                "type": {"type": "string", "description": "Condition type: Ready, Progressing, Degraded, InvalidSpec, Proving."},
                "status": {"type": "string", "enum": ["True", "False", "Unknown"], "description": "True, False or Unknown."},
                "reason": {"type": "string", "description": "CamelCase reason for the last transition."},
                "message": {"type": "string", "description": "Human-readable detail."},
                "lastTransitionTime": {"type": "string", "format": "date-time", "description": "When status last changed."},
                "observedGeneration": {"type": "integer", "format": "int64", "description": "Generation the condition was computed from."}
            }
        }
    })
}

/// A decimal weight in [0, 1], as a string so reward math never sees a float.
pub fn weight(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "type": "string",
        "pattern": r"^(0(\.[0-9]{1,9})?|1(\.0{1,9})?|\.[0-9]{1,9})$",
        "description": "Decimal weight between 0 and 1, as a string (e.g. \"0.4\")."
    })
}

/// A non-negative integer amount of base units, as a string (u128 does not fit JSON numbers).
pub fn amount(_: &mut SchemaGenerator) -> Schema {
    json_schema!({"type": "string", "pattern": "^[0-9]{1,38}$"})
}

/// Same as [`amount`] for optional fields.
pub fn optional_amount(g: &mut SchemaGenerator) -> Schema {
    let mut schema = amount(g);
    schema.insert("nullable".into(), true.into());
    schema
}
