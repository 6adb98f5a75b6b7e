//! Settings of the HTTP layer, with their defaults.

use ipnet::IpNet;

use super::ConfigError;

/// Settings of the HTTP layer: cookie names and attributes, and the request body limit.
///
/// | setting | default |
/// |---|---|
/// | `session_cookie` | `authingo_session` |
/// | `refresh_cookie` | `authingo_refresh` |
/// | `device_cookie` | `authingo_device` |
/// | `two_factor_cookie` | `authingo_two_factor` (a sign-in waiting for its second factor) |
/// | `trusted_device_cookie` | `authingo_trusted_device` (a browser that skips the second factor) |
/// | `secure` | `true` (cookies only over HTTPS; browsers accept them from `http://localhost` too) |
/// | `domain` | none (host-only cookies) |
/// | `refresh_path` | `None`: where the routes are mounted, plus `/refresh` (`/api/auth/refresh` under `/api/auth`) |
/// | `device_path` | `None`: where the routes are mounted (`/api/auth`), so that sign-in and the second factor's routes see it |
/// | `max_body_bytes` | 16 KiB |
/// | `trusted_proxies` | none: the client's address is the TCP peer's |
/// | `forwarded_header` | [`ForwardedHeader::XForwardedFor`], read only from trusted proxies (none by default) |
/// | `app_url` | `http://localhost:8080`: set it to your site; mailed links start with it |
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpOptions {
    /// Name of the access-token cookie.
    pub session_cookie: String,
    /// Name of the refresh-token cookie.
    pub refresh_cookie: String,
    /// Name of the device cookie: the proof that a browser signed in to an email before, which
    /// the sign-in throttle counts apart (see [`SignInThrottle`](crate::SignInThrottle)). Set
    /// by sign-up and sign-in, HttpOnly, SameSite=Strict, on [`device_path`](Self::device_path);
    /// it lasts as long as the engine trusts it (a year by default), or the browser session for
    /// a session without "remember me", and stays after a sign-out.
    pub device_cookie: String,
    /// Name of the cookie of a sign-in waiting for its second factor: HttpOnly,
    /// SameSite=Strict, on the `/two-factor` routes' path, for 5 minutes, single use.
    pub two_factor_cookie: String,
    /// Name of the cookie of a browser trusted to skip the second factor
    /// ([`Options::trusted_device_lifetime`](crate::Options::trusted_device_lifetime)):
    /// HttpOnly, SameSite=Strict, on [`device_path`](Self::device_path).
    pub trusted_device_cookie: String,
    /// Whether cookies carry `Secure`.
    pub secure: bool,
    /// The cookies' `Domain`, for sharing them with subdomains.
    pub domain: Option<String>,
    /// The refresh cookie's `Path`; `None` derives it from where the routes are mounted.
    pub refresh_path: Option<String>,
    /// The `Path` of the device cookie and of the trusted-device cookie; `None`: where the routes
    /// are mounted, which covers sign-in and the second factor's answer.
    pub device_path: Option<String>,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Proxies, as addresses or CIDR ranges, whose [`forwarded_header`](Self::forwarded_header)
    /// is believed for the client's address (recorded with each session, and what the rate
    /// limits count by). When the TCP peer is one of them, the header's chain is read from the
    /// right: each trusted hop passes on to the hop it names, and the first address that is not
    /// a trusted proxy is the client's. Without any (the default) the header is ignored, since
    /// anyone can send it. An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) counts as the IPv4
    /// address, in a range as in a peer.
    pub trusted_proxies: Vec<IpNet>,
    /// The header the trusted proxies write the client's address in; the other one is ignored
    /// (a client may send any header its proxy passes on unchanged).
    pub forwarded_header: ForwardedHeader,
    /// Where the application's pages live; mailed links are `{app_url}/verify-email?token=…`,
    /// `{app_url}/reset-password?token=…` and `{app_url}/confirm-email?token=…`, pages that
    /// read the token and post it to the matching route.
    pub app_url: String,
}

impl Default for HttpOptions {
    fn default() -> Self {
        Self {
            session_cookie: "authingo_session".to_owned(),
            refresh_cookie: "authingo_refresh".to_owned(),
            device_cookie: "authingo_device".to_owned(),
            two_factor_cookie: "authingo_two_factor".to_owned(),
            trusted_device_cookie: "authingo_trusted_device".to_owned(),
            secure: true,
            domain: None,
            refresh_path: None,
            device_path: None,
            max_body_bytes: 16 * 1024,
            trusted_proxies: Vec::new(),
            forwarded_header: ForwardedHeader::default(),
            app_url: "http://localhost:8080".to_owned(),
        }
    }
}

impl HttpOptions {
    /// Sets whether cookies carry `Secure`.
    #[must_use]
    pub fn secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// Sets the cookies' `Domain`.
    #[must_use]
    pub fn domain(mut self, domain: Option<String>) -> Self {
        self.domain = domain;
        self
    }

    /// Sets the two cookie names.
    #[must_use]
    pub fn cookie_names(mut self, session: &str, refresh: &str) -> Self {
        session.clone_into(&mut self.session_cookie);
        refresh.clone_into(&mut self.refresh_cookie);
        self
    }

    /// Sets the device cookie's name.
    #[must_use]
    pub fn device_cookie(mut self, name: &str) -> Self {
        name.clone_into(&mut self.device_cookie);
        self
    }

    /// Sets the refresh cookie's `Path` (`None`: derived from the mount point).
    #[must_use]
    pub fn refresh_path(mut self, path: Option<String>) -> Self {
        self.refresh_path = path;
        self
    }

    /// Sets the device cookie's `Path` (`None`: derived from the mount point).
    #[must_use]
    pub fn device_path(mut self, path: Option<String>) -> Self {
        self.device_path = path;
        self
    }

    /// Sets the request body limit.
    #[must_use]
    pub fn max_body_bytes(mut self, limit: usize) -> Self {
        self.max_body_bytes = limit;
        self
    }

    /// Sets the proxies whose forwarding header is believed (see
    /// [`trusted_proxies`](Self::trusted_proxies)): addresses (`IpAddr`) or ranges
    /// ([`IpNet`](crate::IpNet), `"10.0.0.0/8".parse()?`).
    #[must_use]
    pub fn trusted_proxies(mut self, proxies: impl IntoIterator<Item = impl Into<IpNet>>) -> Self {
        self.trusted_proxies = proxies.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the header the trusted proxies write (see
    /// [`forwarded_header`](Self::forwarded_header)).
    #[must_use]
    pub fn forwarded_header(mut self, header: ForwardedHeader) -> Self {
        self.forwarded_header = header;
        self
    }

    /// Sets [`app_url`](Self::app_url) (a trailing `/` is dropped).
    #[must_use]
    pub fn app_url(mut self, url: &str) -> Self {
        url.trim_end_matches('/').clone_into(&mut self.app_url);
        self
    }

    /// Refuses cookie names that are not three different RFC 6265 tokens.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        let token = |name: &str| {
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        };
        let names = [
            &self.session_cookie,
            &self.refresh_cookie,
            &self.device_cookie,
        ];
        let distinct = names[0] != names[1] && names[0] != names[2] && names[1] != names[2];
        if distinct && names.iter().all(|name| token(name)) {
            Ok(())
        } else {
            Err(ConfigError::Bounds(
                "cookie names must be three different RFC 6265 tokens",
            ))
        }
    }
}

/// The header trusted proxies write the client's address in. Only the one configured is read,
/// and only from a trusted proxy: a client can send either, and a proxy passes on what it does
/// not write itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2`, as nginx's `$proxy_add_x_forwarded_for`,
    /// HAProxy's `option forwardfor` and AWS's load balancers write it.
    #[default]
    XForwardedFor,
    /// `Forwarded: for=client, for="[2001:db8::1]:4711"` (RFC 7239); only `for=` is read.
    Forwarded,
    /// Neither: the client's address is the TCP peer's even when it is a trusted proxy.
    None,
}
