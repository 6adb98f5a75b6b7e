//! A `sql_query` that diesel-async may keep prepared.
//!
//! Diesel cannot know that a `sql_query`'s text never changes, so it prepares it anew on every
//! call: an extra round trip and a fresh plan. The statements of this crate's `.sql` files are
//! fixed strings, so they may be cached like the query builder's, keyed by their text.

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::result::QueryResult;

/// Wraps a `sql_query(include_str!(…))` with its binds; see the module docs.
pub(crate) struct FixedSql<Q>(pub(crate) Q);

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for FixedSql<Q> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.0.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &Pg) -> QueryResult<bool> {
        // Only ever built from a constant SQL text: the statement is the same on every call.
        Ok(true)
    }
}

impl<Q> QueryId for FixedSql<Q> {
    // No static id: the statement cache then keys it by its SQL text.
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: Query> Query for FixedSql<Q> {
    type SqlType = Q::SqlType;
}
