//! Counting the statements a piece of work sends, by the tokio task that sends them: what a
//! request does on its own path, apart from what it leaves to background tasks.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use authingo::postgres::PgStore;
use diesel::connection::{Instrumentation, InstrumentationEvent};
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{AsyncConnection as _, AsyncPgConnection};

use super::TestDb;

/// Statements started, by the task that started them.
#[derive(Clone, Default)]
pub(crate) struct Statements(Arc<Mutex<HashMap<Option<tokio::task::Id>, usize>>>);

impl Statements {
    /// How many statements `task` started.
    pub(crate) fn by(&self, task: tokio::task::Id) -> usize {
        self.0
            .lock()
            .unwrap()
            .get(&Some(task))
            .copied()
            .unwrap_or(0)
    }

    /// How many statements were started in all.
    pub(crate) fn total(&self) -> usize {
        self.0.lock().unwrap().values().sum()
    }
}

struct Counter(Statements);

impl Instrumentation for Counter {
    fn on_connection_event(&mut self, event: InstrumentationEvent<'_>) {
        if matches!(event, InstrumentationEvent::StartQuery { .. }) {
            *(self.0)
                .0
                .lock()
                .unwrap()
                .entry(tokio::task::try_id())
                .or_default() += 1;
        }
    }
}

/// A store over `db` with the crate's pool settings (no ping on checkout or recycling), whose
/// connections count their statements.
pub(crate) async fn counted_store(db: &TestDb) -> (PgStore, Statements) {
    let statements = Statements::default();
    let mut config = ManagerConfig::<AsyncPgConnection>::default();
    config.recycling_method = RecyclingMethod::Fast;
    let counter = statements.clone();
    config.custom_setup = Box::new(move |url| {
        let counter = counter.clone();
        Box::pin(async move {
            let mut conn = AsyncPgConnection::establish(url).await?;
            conn.set_instrumentation(Counter(counter));
            Ok(conn)
        })
    });
    let manager =
        AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(db.url(), config);
    let pool = bb8::Pool::builder()
        .max_size(4)
        .test_on_check_out(false)
        .build(manager)
        .await
        .unwrap();
    (PgStore::new(pool), statements)
}
