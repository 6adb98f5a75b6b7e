//! The SMTP mailer of the tests that read real mail, on the test's own aiosmtpd.

use std::sync::Arc;

use authingo::mail::{SmtpMailer, SmtpSecurity};
use authingo_test_db::SmtpServer;

/// A mailer that sends to `smtp`, in plain text (a local relay).
pub(crate) fn smtp_mailer(smtp: &SmtpServer) -> Arc<SmtpMailer> {
    Arc::new(
        SmtpMailer::new(
            "127.0.0.1",
            smtp.port(),
            SmtpSecurity::None,
            None,
            "Example <no-reply@example.com>",
        )
        .unwrap(),
    )
}
