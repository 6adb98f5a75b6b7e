//! TOTP codes from an independent implementation, Debian's `oathtool`: the crate's RFC 6238
//! arithmetic is checked against someone else's.

use std::process::Command;

use chrono::{DateTime, TimeDelta, Utc};

/// The code `oathtool` computes for the base32 `secret` at `at`.
pub(crate) fn oathtool(secret: &str, at: DateTime<Utc>) -> String {
    let now = at.format("%Y-%m-%d %H:%M:%S UTC").to_string();
    let output = Command::new("oathtool")
        .args(["--totp", "-b", secret, "--now", &now])
        .output()
        .unwrap_or_else(|err| {
            panic!(
                "oathtool is needed for the second factor's tests ({err}): \
                 apt-get install -y oathtool"
            )
        });
    assert!(
        output.status.success(),
        "oathtool failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// The code `steps` time steps (of 30 s) from now.
pub(crate) fn code_in(secret: &str, steps: i64) -> String {
    oathtool(secret, Utc::now() + TimeDelta::seconds(30 * steps))
}
