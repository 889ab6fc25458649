//! Cursor pagination (DESIGN §4): a page request whose limit and cursor were checked
//! once, at the edge, so every list below it can trust them. A cursor is the sort key of
//! the last item of the previous page, typed per list: an unreadable one is an error,
//! never an empty page. The memory store's routes page by `limit` and `offset` instead,
//! as LangGraph's store does ([`OffsetPage`]).

use std::fmt;

use crate::ids::{AgentId, ApiKeyId, AuditEventId, InviteId, InvocationId, ScheduleId, TenantId, ThreadId, UserId};

/// The bounds of one kind of list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageBounds {
    pub default: u32,
    pub max: u32,
}

impl PageBounds {
    /// Lists of resources (agents, versions, keys, invocations, artifacts).
    pub const RESOURCES: PageBounds = PageBounds { default: 50, max: 200 };
    /// An invocation's events, read in `seq` order.
    pub const EVENTS: PageBounds = PageBounds { default: 1000, max: 1000 };
    /// Items found by a memory store search.
    pub const MEMORY_ITEMS: PageBounds = PageBounds { default: 10, max: 100 };
    /// Namespaces listed from the memory store.
    pub const MEMORY_NAMESPACES: PageBounds = PageBounds { default: 100, max: 100 };
}

/// Why a page request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PageError {
    #[error("limit must be between 1 and {max}, got {got}")]
    Limit { got: i64, max: u32 },
    #[error("offset must be 0 or more, got {got}")]
    Offset { got: i64 },
    #[error("cursor `{got}` is not one this list returned; pass next_cursor from the previous page as it is")]
    Cursor { got: String },
}

/// A value a list can resume after.
pub trait Cursor: Sized {
    fn parse_cursor(raw: &str) -> Option<Self>;
    fn to_cursor(&self) -> String;
}

macro_rules! id_cursor {
    ($($id:ty),+) => {$(
        impl Cursor for $id {
            fn parse_cursor(raw: &str) -> Option<Self> {
                <$id>::parse(raw).ok()
            }
            fn to_cursor(&self) -> String {
                self.to_string()
            }
        }
    )+};
}

id_cursor!(AgentId, ApiKeyId, AuditEventId, InvocationId, TenantId, ThreadId, InviteId, UserId, ScheduleId);

/// Version numbers and event sequence numbers.
macro_rules! number_cursor {
    ($($n:ty),+) => {$(
        impl Cursor for $n {
            fn parse_cursor(raw: &str) -> Option<Self> {
                raw.parse().ok()
            }
            fn to_cursor(&self) -> String {
                self.to_string()
            }
        }
    )+};
}

number_cursor!(u32, u64);

/// A name in a list sorted by name (artifacts): non-empty text of bounded length without
/// control characters (no name has them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameCursor(String);

impl NameCursor {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Cursor for NameCursor {
    fn parse_cursor(raw: &str) -> Option<Self> {
        let valid = !raw.is_empty() && raw.len() <= 4096 && !raw.chars().any(char::is_control);
        valid.then(|| NameCursor(raw.to_owned()))
    }
    fn to_cursor(&self) -> String {
        self.0.clone()
    }
}

/// How many items, starting after which one.
#[derive(Clone, PartialEq, Eq)]
pub struct PageRequest<C> {
    limit: u32,
    after: Option<C>,
}

impl<C: Cursor> PageRequest<C> {
    /// Checks a requested limit (absent: the default) and cursor (absent: from the start).
    pub fn parse(limit: Option<u32>, cursor: Option<&str>, bounds: PageBounds) -> Result<Self, PageError> {
        let limit = match limit {
            None => bounds.default,
            Some(n) if (1..=bounds.max).contains(&n) => n,
            Some(got) => return Err(PageError::Limit { got: got.into(), max: bounds.max }),
        };
        let after = match cursor {
            None => None,
            Some(raw) => {
                Some(C::parse_cursor(raw).ok_or_else(|| PageError::Cursor { got: raw.chars().take(80).collect() })?)
            }
        };
        Ok(PageRequest { limit, after })
    }

    /// A page of the default size after `after` (from the start when `None`), for a
    /// caller that holds a cursor value already rather than text from a client.
    pub fn after_value(after: Option<C>, bounds: PageBounds) -> Self {
        PageRequest { limit: bounds.default, after }
    }
}

impl<C> PageRequest<C> {
    pub fn limit(&self) -> u32 {
        self.limit
    }

    pub fn after(&self) -> Option<&C> {
        self.after.as_ref()
    }
}

impl<C: Cursor> fmt::Debug for PageRequest<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let after = self.after.as_ref().map(Cursor::to_cursor);
        f.debug_struct("PageRequest").field("limit", &self.limit).field("after", &after).finish()
    }
}

/// `limit` items after skipping `offset`, both checked: the memory store's lists, which
/// take LangGraph's paging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetPage {
    limit: u32,
    offset: u64,
}

impl OffsetPage {
    /// Checks a requested limit (absent: the default) and offset (absent: 0). Signed, so
    /// that a negative one is refused with the rule rather than as a malformed number.
    pub fn parse(limit: Option<i64>, offset: Option<i64>, bounds: PageBounds) -> Result<OffsetPage, PageError> {
        let limit = match limit {
            None => bounds.default,
            Some(n) if (1..=i64::from(bounds.max)).contains(&n) => n as u32,
            Some(got) => return Err(PageError::Limit { got, max: bounds.max }),
        };
        let offset = match offset {
            None => 0,
            Some(n) => u64::try_from(n).map_err(|_| PageError::Offset { got: n })?,
        };
        Ok(OffsetPage { limit, offset })
    }

    pub fn limit(&self) -> u32 {
        self.limit
    }

    pub fn offset(&self) -> u64 {
        self.offset
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_outside_the_bounds_are_refused_not_clamped() {
        let parse = |n| PageRequest::<u64>::parse(n, None, PageBounds::RESOURCES);
        assert_eq!(parse(None).map(|p| p.limit()), Ok(50));
        assert_eq!(parse(Some(200)).map(|p| p.limit()), Ok(200));
        assert_eq!(parse(Some(0)), Err(PageError::Limit { got: 0, max: 200 }));
        assert_eq!(parse(Some(100_000)), Err(PageError::Limit { got: 100_000, max: 200 }));
    }

    #[test]
    fn offset_pages_refuse_limits_out_of_range_and_negative_offsets() {
        let parse = |limit, offset| OffsetPage::parse(limit, offset, PageBounds::MEMORY_ITEMS);
        assert_eq!(parse(None, None), Ok(OffsetPage { limit: 10, offset: 0 }));
        assert_eq!(parse(Some(100), Some(7)), Ok(OffsetPage { limit: 100, offset: 7 }));
        assert_eq!(parse(Some(0), None), Err(PageError::Limit { got: 0, max: 100 }));
        assert_eq!(parse(Some(-1), None), Err(PageError::Limit { got: -1, max: 100 }));
        assert_eq!(parse(Some(101), None), Err(PageError::Limit { got: 101, max: 100 }));
        assert_eq!(parse(None, Some(-1)), Err(PageError::Offset { got: -1 }));
    }

    #[test]
    fn a_cursor_of_the_wrong_kind_is_refused() {
        let agents = |c: &str| PageRequest::<AgentId>::parse(None, Some(c), PageBounds::RESOURCES);
        assert!(agents(AgentId::generate().as_str()).is_ok());
        assert!(matches!(agents("garbage"), Err(PageError::Cursor { .. })));
        assert!(matches!(agents(InvocationId::generate().as_str()), Err(PageError::Cursor { .. })));
        assert!(PageRequest::<u32>::parse(None, Some("-1"), PageBounds::RESOURCES).is_err());
    }
}
