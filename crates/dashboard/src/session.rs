//! Logins for the pages and API: the same users, passwords and tokens as Flight SQL
//! ([`Authenticator::login`]), carried in a session cookie (HttpOnly, SameSite=Strict,
//! Secure under TLS). Pages without a session redirect to the login page, API calls get
//! 401, and every POST must come from this site's own pages (its `Origin`).

use std::net::{IpAddr, SocketAddr};

use axum::Extension;
use axum::extract::{ConnectInfo, Form, Query, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use sluice_flight_sql::{Action, AuthError, AuthenticatedUser};

use crate::api::ApiError;
use crate::pages::{escape, page};
use crate::state::DashboardState;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "sluice_session";

/// Who is asking, for the handlers: the logged-in user (`None` when the server has no
/// users) and the client's address.
#[derive(Debug, Clone)]
pub(crate) struct Viewer {
    pub(crate) user: Option<AuthenticatedUser>,
    pub(crate) peer: Option<IpAddr>,
}

/// The session token in the request's cookies.
fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, value)| value.trim().to_string())
}

/// Whether a state-changing request comes from this site: its `Origin` names the host it
/// was sent to, or (without `Origin`) the browser marks it same-origin.
fn same_origin(headers: &HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    match headers.get(header::ORIGIN).and_then(|o| o.to_str().ok()) {
        Some(origin) => {
            let authority = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"));
            matches!((authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h))
        }
        None => headers
            .get("sec-fetch-site")
            .and_then(|v| v.to_str().ok())
            .is_none_or(|site| site == "same-origin" || site == "none"),
    }
}

fn is_open_path(path: &str) -> bool {
    path == "/login" || path.starts_with("/assets/")
}

/// The middleware in front of every route.
pub(crate) async fn guard(
    State(state): State<DashboardState>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let path = request.uri().path().to_string();
    if request.method() == Method::POST && !same_origin(request.headers()) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            "cross_site",
            "refused: a state-changing request from another site",
        )
        .into_response();
    }
    let Some(auth) = &state.0.options.auth else {
        request.extensions_mut().insert(Viewer { user: None, peer });
        return next.run(request).await;
    };
    let user = session_token(request.headers())
        .and_then(|token| auth.check_bearer(&format!("Bearer {token}")).ok());
    match user {
        Some(user) => {
            if !user.role.allows(Action::Query) && !is_open_path(&path) {
                return ApiError::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    format!("role {} may not read dashboards", user.role),
                )
                .into_response();
            }
            request.extensions_mut().insert(Viewer {
                user: Some(user),
                peer,
            });
            next.run(request).await
        }
        None if is_open_path(&path) || path == "/logout" => {
            request.extensions_mut().insert(Viewer { user: None, peer });
            next.run(request).await
        }
        None if path.starts_with("/api/") => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "log in first (POST /login) and send the session cookie",
        )
        .into_response(),
        None => {
            let target = request
                .uri()
                .path_and_query()
                .map_or("/".to_string(), |p| p.to_string());
            Redirect::to(&format!("/login?next={}", url_encode(&target))).into_response()
        }
    }
}

/// Percent-encodes a URL component.
fn url_encode(text: &str) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Where to go after logging in: a path on this site only.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/dashboards".to_string(),
    }
}

/// `?next=` of the login page.
#[derive(Deserialize)]
pub(crate) struct NextParam {
    next: Option<String>,
}

fn login_page(next: &str, message: Option<&str>) -> Html<String> {
    let message = message
        .map(|m| {
            format!(
                "<div class=\"panel-error\" id=\"login-error\">{}</div>",
                escape(m)
            )
        })
        .unwrap_or_default();
    let body = format!(
        "<form class=\"login\" method=\"post\" action=\"/login\"><h1>Log in</h1>{message}\
         <label>User <input name=\"user\" autocomplete=\"username\" required autofocus></label>\
         <label>Password <input name=\"password\" type=\"password\" autocomplete=\"current-password\" required></label>\
         <input type=\"hidden\" name=\"next\" value=\"{}\"><button>Log in</button></form>",
        escape(next)
    );
    page("Log in", "", None, &body)
}

/// `GET /login`.
pub(crate) async fn login_form(
    State(state): State<DashboardState>,
    Query(q): Query<NextParam>,
) -> Response {
    let next = safe_next(q.next.as_deref());
    if state.0.options.auth.is_none() {
        return Redirect::to(&next).into_response();
    }
    login_page(&next, None).into_response()
}

/// The login form.
#[derive(Deserialize)]
pub(crate) struct LoginForm {
    user: String,
    password: String,
    next: Option<String>,
}

/// `POST /login`: checks the password and sets the session cookie.
pub(crate) async fn login(
    State(state): State<DashboardState>,
    Extension(viewer): Extension<Viewer>,
    Form(form): Form<LoginForm>,
) -> Response {
    let next = safe_next(form.next.as_deref());
    let Some(auth) = &state.0.options.auth else {
        return Redirect::to(&next).into_response();
    };
    match auth.login(&form.user, &form.password, viewer.peer).await {
        Ok(token) => {
            let secure = if state.0.options.secure_cookies {
                "; Secure"
            } else {
                ""
            };
            let cookie =
                format!("{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict{secure}");
            (
                StatusCode::SEE_OTHER,
                [(header::SET_COOKIE, cookie), (header::LOCATION, next)],
            )
                .into_response()
        }
        Err(e) => {
            let (status, message) = match &e {
                AuthError::BadCredentials => (
                    StatusCode::UNAUTHORIZED,
                    "wrong user name or password".to_string(),
                ),
                AuthError::BackOff { .. } => (StatusCode::TOO_MANY_REQUESTS, e.to_string()),
                _ => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
            };
            (status, login_page(&next, Some(&message))).into_response()
        }
    }
}

/// `POST /logout`: clears the session cookie.
pub(crate) async fn logout() -> Response {
    let cookie = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    (
        StatusCode::SEE_OTHER,
        [
            (header::SET_COOKIE, cookie),
            (header::LOCATION, "/login".to_string()),
        ],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn origins_must_match_the_host() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(
            same_origin(&h),
            "no Origin and no Sec-Fetch-Site: a non-browser client"
        );
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!same_origin(&h));
        h.remove(header::ORIGIN);
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!same_origin(&h));
    }

    #[test]
    fn only_local_paths_follow_a_login() {
        assert_eq!(safe_next(Some("/dashboards/x?a=1")), "/dashboards/x?a=1");
        assert_eq!(safe_next(Some("//evil.example/")), "/dashboards");
        assert_eq!(safe_next(Some("https://evil.example/")), "/dashboards");
        assert_eq!(safe_next(None), "/dashboards");
    }

    #[test]
    fn the_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; sluice_session=tok; b=2"),
        );
        assert_eq!(session_token(&h), Some("tok".to_string()));
    }
}
