//! The memory store's statements. Two kinds differ per engine: matching a filter
//! against JSON values, and cutting namespaces to a depth; the rest are portable. They
//! are assembled from literals at compile time; every value a caller gives is a bound
//! parameter.
//!
//! Parameters shared by search and the namespace listing: `$1` tenant, `$2` now (unix ms: an item whose
//! `expires_at` is not after it is gone), `$3` the prefix joined by `.` (empty: none),
//! `$4` and `$5` the bounds of the namespaces below the prefix (`prefix.` inclusive to
//! `prefix/` exclusive: `/` is the character after `.`, so with byte-wise comparison
//! that range is exactly the namespaces that continue the prefix by a label).

macro_rules! item_columns {
    () => {
        "namespace, key, value, created_at, updated_at, expires_at"
    };
}

/// `$1` tenant, `$2` namespace, `$3` key, `$4` now.
pub(super) const GET: &str = concat!(
    "SELECT ",
    item_columns!(),
    " FROM memory_items WHERE tenant_id = $1 AND namespace = $2 AND key = $3
       AND (expires_at IS NULL OR expires_at > $4)"
);

/// The item a write replaces, if any, live or not: its bytes are still counted.
pub(super) const PREVIOUS: &str =
    "SELECT size_bytes, created_at, expires_at FROM memory_items WHERE tenant_id = $1 AND namespace = $2 AND key = $3";

/// `$1` tenant .. `$8` expires_at; `$6` created_at, `$7` updated_at.
pub(super) const UPSERT: &str = concat!(
    "INSERT INTO memory_items (tenant_id, namespace, key, value, size_bytes, created_at, updated_at, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (tenant_id, namespace, key) DO UPDATE SET value = excluded.value,
         size_bytes = excluded.size_bytes, created_at = excluded.created_at,
         updated_at = excluded.updated_at, expires_at = excluded.expires_at
     RETURNING ",
    item_columns!()
);

/// Locks the tenant's usage row (creating it at the first write) and reads it. Every
/// write takes this lock first: a tenant's writes serialize on it, so the sum stays exact
/// and no two writers take their locks in opposite orders.
pub(super) const LOCK_USAGE: &str = "INSERT INTO memory_usage (tenant_id, bytes) VALUES ($1, 0)
     ON CONFLICT (tenant_id) DO UPDATE SET bytes = memory_usage.bytes RETURNING bytes";

/// `$2`: the new sum.
pub(super) const SET_USAGE: &str = "UPDATE memory_usage SET bytes = $2 WHERE tenant_id = $1";

/// `$2`: bytes given back.
pub(super) const RELEASE_USAGE: &str = "UPDATE memory_usage SET bytes = bytes - $2 WHERE tenant_id = $1";

/// Only a live item is deleted: an expired one is already gone to readers, and the
/// reconciler gives its bytes back.
pub(super) const DELETE: &str = "DELETE FROM memory_items
     WHERE tenant_id = $1 AND namespace = $2 AND key = $3 AND (expires_at IS NULL OR expires_at > $4)
     RETURNING size_bytes";

/// Tenants with expired items, a batch of them per pass.
pub(super) const TENANTS_WITH_EXPIRED: &str = "SELECT DISTINCT tenant_id FROM memory_items
     WHERE expires_at IS NOT NULL AND expires_at <= $1 LIMIT $2";

/// Up to `$3` expired items of tenant `$1`.
pub(super) const DELETE_EXPIRED: &str = "DELETE FROM memory_items WHERE tenant_id = $1 AND (namespace, key) IN (
         SELECT namespace, key FROM memory_items
         WHERE tenant_id = $1 AND expires_at IS NOT NULL AND expires_at <= $2 LIMIT $3)
     RETURNING size_bytes";

macro_rules! live_under_prefix {
    () => {
        "tenant_id = $1 AND (expires_at IS NULL OR expires_at > $2)
         AND ($3 = '' OR namespace = $3 OR (namespace >= $4 AND namespace < $5))"
    };
}

/// `$6`: the filter, a JSON object of field → value. An item matches when, for every
/// field, its value is an object whose field holds an equal JSON value: the same type
/// (integers and reals are both numbers) and the same value; arrays and objects compare
/// as their JSON text, which both sides have in the canonical form the server writes.
/// `coalesce` makes a missing field a mismatch rather than unknown.
pub(super) const SQLITE_SEARCH: &str = concat!(
    "SELECT ",
    item_columns!(),
    " FROM memory_items WHERE ",
    live_under_prefix!(),
    " AND NOT EXISTS (
        SELECT 1 FROM json_each($6) AS f
        WHERE NOT coalesce(
            (CASE json_type(memory_items.value, '$.\"' || f.key || '\"')
                WHEN 'integer' THEN 'number' WHEN 'real' THEN 'number'
                ELSE json_type(memory_items.value, '$.\"' || f.key || '\"') END)
            = (CASE f.type WHEN 'integer' THEN 'number' WHEN 'real' THEN 'number' ELSE f.type END)
            AND (f.type IN ('true', 'false', 'null')
                 OR json_extract(memory_items.value, '$.\"' || f.key || '\"') = f.value),
            0))
     ORDER BY updated_at DESC, namespace, key LIMIT $7 OFFSET $8"
);

/// `$6`: the filter; jsonb equality compares structure and numbers by value.
pub(super) const POSTGRES_SEARCH: &str = concat!(
    "SELECT ",
    item_columns!(),
    " FROM memory_items WHERE ",
    live_under_prefix!(),
    " AND NOT EXISTS (
        SELECT 1 FROM jsonb_each($6::jsonb) AS f(key, value)
        WHERE (memory_items.value::jsonb -> f.key) IS DISTINCT FROM f.value)
     ORDER BY updated_at DESC, namespace, key LIMIT $7 OFFSET $8"
);

macro_rules! live_with_suffix {
    () => {
        concat!(
            live_under_prefix!(),
            " AND ($6 = '' OR namespace = $6
                   OR (length(namespace) > length($6)
                       AND substr(namespace, length(namespace) - length($6)) = '.' || $6))"
        )
    };
}

/// `$6` the suffix joined by `.` (empty: none), `$7` the depth to cut at, `$8` limit,
/// `$9` offset. SQLite has no arrays: a recursive walk takes one label at a time off
/// each distinct namespace (with a `.` appended, so every label ends in one) until the
/// namespace or the depth runs out.
pub(super) const SQLITE_NAMESPACES: &str = concat!(
    "WITH RECURSIVE
       spaces(namespace) AS (SELECT DISTINCT namespace FROM memory_items WHERE ",
    live_with_suffix!(),
    "),
       cut(head, rest, depth) AS (
         SELECT '', namespace || '.', 0 FROM spaces
         UNION ALL
         SELECT head || (CASE WHEN depth = 0 THEN '' ELSE '.' END) || substr(rest, 1, instr(rest, '.') - 1),
                substr(rest, instr(rest, '.') + 1), depth + 1
         FROM cut WHERE rest <> '' AND depth < $7)
     SELECT DISTINCT head FROM cut WHERE depth > 0 AND (rest = '' OR depth = $7)
     ORDER BY head LIMIT $8 OFFSET $9"
);

/// The same on PostgreSQL, with an array slice; sorted byte-wise like SQLite.
pub(super) const POSTGRES_NAMESPACES: &str = concat!(
    "SELECT DISTINCT array_to_string((string_to_array(namespace, '.'))[1:$7::int], '.') COLLATE \"C\" AS head
     FROM memory_items WHERE ",
    live_with_suffix!(),
    " ORDER BY head LIMIT $8 OFFSET $9"
);
