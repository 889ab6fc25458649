//! JSON Schemas of the types whose serde shape is written by hand (ids, slugs, instants),
//! for the server's OpenAPI document. Built only with the `openapi` feature.

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};

/// A string with a pattern and a description, inline (ids and slugs stay readable inline).
pub(crate) fn pattern_string(pattern: &str, description: &str) -> RefOr<Schema> {
    ObjectBuilder::new().schema_type(Type::String).pattern(Some(pattern)).description(Some(description)).into()
}

impl utoipa::PartialSchema for crate::Timestamp {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .description(Some("An instant in RFC 3339, UTC, to the millisecond."))
            .into()
    }
}

impl utoipa::ToSchema for crate::Timestamp {}

impl utoipa::PartialSchema for crate::Slug {
    fn schema() -> RefOr<Schema> {
        pattern_string(
            "^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$",
            "1 to 63 lowercase letters, digits and '-', starting and ending with a letter or digit.",
        )
    }
}

impl utoipa::ToSchema for crate::Slug {}

impl utoipa::PartialSchema for crate::AuditAction {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(crate::AuditAction::ALL.iter().map(|a| a.as_str())))
            .description(Some("What was done, as `resource.verb` (docs/API.md, \"Audit log\", lists them)."))
            .into()
    }
}

impl utoipa::ToSchema for crate::AuditAction {}
