//! Statements diesel-async may keep prepared although Diesel says otherwise.
//!
//! Diesel marks a `sql_query` as not cacheable (it cannot know the text is constant), and every
//! PostgreSQL insert too (a field may render as `DEFAULT` or as a bind, so the text may depend on
//! the values). Not cached, a statement is prepared anew on every call: an extra round trip and a
//! fresh plan. Wrapped in [`Prepared`], it is cached under its SQL text and bind types, which is
//! correct whatever the statement: a different text is a different entry.

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::query_dsl::RunQueryDslSupport;
use diesel::result::QueryResult;

/// A statement to keep prepared, cached by its text; see the module docs.
pub(crate) struct Prepared<Q>(pub(crate) Q);

impl<Q: QueryFragment<Pg>> QueryFragment<Pg> for Prepared<Q> {
    fn walk_ast<'b>(&'b self, pass: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        self.0.walk_ast(pass)
    }

    fn is_safe_to_cache_prepared(&self, _backend: &Pg) -> QueryResult<bool> {
        Ok(true)
    }
}

impl<Q> QueryId for Prepared<Q> {
    // No static id: the statement cache then keys it by its SQL text and bind types.
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q: Query> Query for Prepared<Q> {
    type SqlType = Q::SqlType;
}

// The marker that gives a query diesel-async's `RunQueryDsl` (`execute`, `get_result`).
impl<Q> RunQueryDslSupport for Prepared<Q> {}
