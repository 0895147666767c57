//! Call routing, sans-IO: which bot (and which barge-in settings) answers a new call.
//!
//! `[[routes]]` are tried in order; the first whose every given condition holds wins:
//! dialled number (To user part) by `to_prefix` and/or `to_regex`, source address of the
//! INVITE by `source` (IPs or CIDRs), and/or a header (`header = "X-Trunk: acme"`). A route
//! with no condition never matches by itself: it exists to be picked by name (by the HTTP
//! hook, or as the hook's fallback). No match → the default `[bot]`/`[bargein]`, or a reject
//! with `routing.no_match_code`.
//!
//! A route's `bot` and `bargein` tables are overlays: the keys they set replace those of the
//! top-level `[bot]`/`[bargein]`, and the result is validated like the top level (errors name
//! `routes[i].…`). The optional HTTP hook (`[routing.hook]`, shell in `routing_hook.rs`) asks
//! a web service; its JSON answer names a route, overlays bot keys, or rejects the call.

use std::net::IpAddr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::config::{Config, ConfigError};

/// `[routing]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RoutingConfig {
    /// SIP status for calls no route matches; 0 = answer them with the default `[bot]`.
    pub no_match_code: u16,
    pub hook: HookConfig,
}

/// `[routing.hook]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct HookConfig {
    /// `http://host:port/path`; empty = no hook.
    pub url: String,
    /// The whole exchange (connect, request, answer) must finish within this.
    pub timeout_ms: u64,
    /// When the hook fails, times out or answers something unusable: a route name,
    /// `"default"` (the top-level bot) or `"reject:<code>"`.
    pub fallback: String,
}

/// One `[[routes]]` entry as written.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub name: String,
    #[serde(default)]
    pub to_prefix: Option<String>,
    #[serde(default)]
    pub to_regex: Option<String>,
    /// Source IPs or CIDRs of the INVITE (any of them).
    #[serde(default)]
    pub source: Vec<String>,
    /// `"Name: value"`: the INVITE carries this header with exactly this value.
    #[serde(default)]
    pub header: Option<String>,
    /// Keys replacing those of `[bot]` for this route.
    #[serde(default)]
    pub bot: Option<Value>,
    /// Keys replacing those of `[bargein]` for this route.
    #[serde(default)]
    pub bargein: Option<Value>,
}

/// What is known of a new call when it is routed.
#[derive(Clone, Debug)]
pub struct CallFacts<'a> {
    pub to_user: Option<&'a str>,
    pub source: IpAddr,
    /// The INVITE's kept headers (identity headers and every `X-` header), in order.
    pub headers: &'a [(String, String)],
}

/// The routing outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// `routes[i]`.
    Route(usize),
    /// The top-level `[bot]` and `[bargein]`.
    Default,
    /// Refuse the INVITE.
    Reject { code: u16, reason: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    fn parse(s: &str) -> Option<Cidr> {
        let (ip, prefix) = match s.split_once('/') {
            Some((ip, p)) => (
                ip.trim().parse::<IpAddr>().ok()?,
                Some(p.trim().parse::<u8>().ok()?),
            ),
            None => (s.trim().parse::<IpAddr>().ok()?, None),
        };
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Cidr { net: ip, prefix })
    }

    fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4 caller seen on a dual-stack socket arrives as ::ffff:a.b.c.d.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.net, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// One route, compiled.
#[derive(Clone, Debug)]
pub struct Route {
    pub name: String,
    to_prefix: Option<String>,
    to_regex: Option<regex::Regex>,
    source: Vec<Cidr>,
    header: Option<(String, String)>,
    /// The full configuration this route's calls run with (`bot` and `bargein` merged).
    pub config: Arc<Config>,
}

impl Route {
    fn has_conditions(&self) -> bool {
        self.to_prefix.is_some()
            || self.to_regex.is_some()
            || !self.source.is_empty()
            || self.header.is_some()
    }

    fn matches(&self, facts: &CallFacts<'_>) -> bool {
        if !self.has_conditions() {
            return false;
        }
        if let Some(prefix) = &self.to_prefix {
            if !facts
                .to_user
                .is_some_and(|u| u.starts_with(prefix.as_str()))
            {
                return false;
            }
        }
        if let Some(re) = &self.to_regex {
            if !facts.to_user.is_some_and(|u| re.is_match(u)) {
                return false;
            }
        }
        if !self.source.is_empty() && !self.source.iter().any(|c| c.contains(facts.source)) {
            return false;
        }
        if let Some((name, value)) = &self.header {
            let found = facts
                .headers
                .iter()
                .any(|(n, v)| n.eq_ignore_ascii_case(name) && v.trim() == value);
            if !found {
                return false;
            }
        }
        true
    }
}

/// What the hook's fallback (or answer) resolves to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Route(usize),
    Default,
    Reject(u16),
}

/// The compiled routing table.
#[derive(Clone, Debug)]
pub struct Router {
    routes: Vec<Route>,
    no_match_code: u16,
    hook_fallback: Target,
    hook_fallback_name: String,
}

fn route_key(i: usize, key: &str) -> String {
    format!("routes[{i}].{key}")
}

fn check_code(code: u16) -> bool {
    (400..=699).contains(&code)
}

/// `value` with every key of `overlay` replacing its own (objects merge key by key).
pub fn overlay(value: &mut Value, overlay: &Value) {
    match (value, overlay) {
        (Value::Object(base), Value::Object(top)) => {
            for (k, v) in top {
                match base.get_mut(k) {
                    Some(slot) => self::overlay(slot, v),
                    None => {
                        base.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (slot, v) => *slot = v.clone(),
    }
}

/// `cfg` with `bot` and/or `bargein` overlaid and validated; errors name `<prefix>bot.…`.
pub fn overlaid_config(
    cfg: &Config,
    bot: Option<&Value>,
    bargein: Option<&Value>,
    prefix: &str,
) -> Result<Config, ConfigError> {
    let named = |key: &str, problem: String| ConfigError::Invalid {
        key: format!("{prefix}{key}"),
        problem,
    };
    let mut out = cfg.clone();
    // The copy is one route's world: no routes of its own, no hook to consult.
    out.routes.clear();
    out.routing.hook.url.clear();
    out.routing.hook.fallback = "default".into();
    if let Some(b) = bot {
        if !b.is_object() {
            return Err(named("bot", "must be a table".into()));
        }
        let mut v = serde_json::to_value(&cfg.bot).map_err(|e| named("bot", e.to_string()))?;
        overlay(&mut v, b);
        out.bot = serde_json::from_value(v).map_err(|e| named("bot", e.to_string()))?;
    }
    if let Some(b) = bargein {
        if !b.is_object() {
            return Err(named("bargein", "must be a table".into()));
        }
        let mut v =
            serde_json::to_value(&cfg.bargein).map_err(|e| named("bargein", e.to_string()))?;
        overlay(&mut v, b);
        out.bargein = serde_json::from_value(v).map_err(|e| named("bargein", e.to_string()))?;
    }
    out.validate().map_err(|e| match e {
        ConfigError::Invalid { key, problem } => named(&key, problem),
        other => other,
    })?;
    Ok(out)
}

impl Router {
    /// Compiles and validates `[[routes]]` and `[routing]` (called by `Config::validate`, so a
    /// bad regex or CIDR stops the gateway at start with the key named).
    pub fn from_config(cfg: &Config) -> Result<Router, ConfigError> {
        let r = &cfg.routing;
        if r.no_match_code != 0 && !check_code(r.no_match_code) {
            return Err(invalid(
                "routing.no_match_code",
                "must be 0 or a SIP code 400..=699",
            ));
        }
        let mut routes = Vec::with_capacity(cfg.routes.len());
        for (i, rc) in cfg.routes.iter().enumerate() {
            let name = rc.name.trim();
            if name.is_empty() || name == "default" || name.starts_with("reject:") {
                return Err(invalid(
                    route_key(i, "name"),
                    "must be set, and not `default` or `reject:…` (they mean something else)",
                ));
            }
            if routes.iter().any(|r: &Route| r.name == name) {
                return Err(invalid(
                    route_key(i, "name"),
                    format!("`{name}` is used twice"),
                ));
            }
            if rc.to_prefix.as_deref() == Some("") {
                return Err(invalid(route_key(i, "to_prefix"), "must not be empty"));
            }
            let to_regex = match &rc.to_regex {
                Some(re) => Some(
                    regex::Regex::new(re)
                        .map_err(|e| invalid(route_key(i, "to_regex"), e.to_string()))?,
                ),
                None => None,
            };
            let mut source = Vec::new();
            for s in &rc.source {
                source.push(Cidr::parse(s).ok_or_else(|| {
                    invalid(
                        route_key(i, "source"),
                        format!("`{s}` is not an IP or CIDR"),
                    )
                })?);
            }
            let header = match &rc.header {
                Some(h) => {
                    let (n, v) = h
                        .split_once(':')
                        .ok_or_else(|| invalid(route_key(i, "header"), "must be `Name: value`"))?;
                    let n = n.trim();
                    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                        return Err(invalid(route_key(i, "header"), "bad header name"));
                    }
                    Some((n.to_string(), v.trim().to_string()))
                }
                None => None,
            };
            let config =
                overlaid_config(cfg, rc.bot.as_ref(), rc.bargein.as_ref(), &route_key(i, ""))?;
            routes.push(Route {
                name: name.to_string(),
                to_prefix: rc.to_prefix.clone(),
                to_regex,
                source,
                header,
                config: Arc::new(config),
            });
        }
        let h = &r.hook;
        if !h.url.is_empty() && crate::routing_hook::parse_url(&h.url).is_err() {
            return Err(invalid(
                "routing.hook.url",
                "must be empty or an http://host:port/path URL",
            ));
        }
        if !(10..=30_000).contains(&h.timeout_ms) {
            return Err(invalid("routing.hook.timeout_ms", "must be 10..=30000"));
        }
        let mut router = Router {
            routes,
            no_match_code: r.no_match_code,
            hook_fallback: Target::Default,
            hook_fallback_name: h.fallback.clone(),
        };
        router.hook_fallback = router.target(&h.fallback).ok_or_else(|| {
            invalid(
                "routing.hook.fallback",
                format!(
                    "`{}` is not a route name, `default` or `reject:<400..699>`",
                    h.fallback
                ),
            )
        })?;
        Ok(router)
    }

    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// A route name, `default`, or `reject:<code>`.
    pub fn target(&self, name: &str) -> Option<Target> {
        if name == "default" {
            return Some(Target::Default);
        }
        if let Some(code) = name.strip_prefix("reject:") {
            return code
                .parse()
                .ok()
                .filter(|c| check_code(*c))
                .map(Target::Reject);
        }
        self.routes
            .iter()
            .position(|r| r.name == name)
            .map(Target::Route)
    }

    pub fn hook_fallback(&self) -> &Target {
        &self.hook_fallback
    }

    /// As configured (`routing.hook.fallback`), for the log.
    pub fn hook_fallback_name(&self) -> &str {
        &self.hook_fallback_name
    }

    /// The static decision: first matching route, else the default or the no-match reject.
    pub fn select(&self, facts: &CallFacts<'_>) -> Decision {
        if let Some(i) = self.routes.iter().position(|r| r.matches(facts)) {
            return Decision::Route(i);
        }
        match self.no_match_code {
            0 => Decision::Default,
            code => Decision::Reject {
                code,
                reason: reason_phrase(code).to_string(),
            },
        }
    }
}

fn invalid(key: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        problem: problem.into(),
    }
}

/// A standard reason phrase for the codes a router typically uses.
pub fn reason_phrase(code: u16) -> &'static str {
    match code {
        403 => "Forbidden",
        404 => "Not Found",
        480 => "Temporarily Unavailable",
        486 => "Busy Here",
        488 => "Not Acceptable Here",
        500 => "Server Internal Error",
        503 => "Service Unavailable",
        603 => "Decline",
        _ => "Rejected",
    }
}

/// The hook's request body: the call's details and what the static routes would pick.
pub fn hook_request(
    info: &crate::bot::CallInfo,
    source: std::net::SocketAddr,
    static_decision: &Decision,
    router: &Router,
) -> Value {
    let matched = match static_decision {
        Decision::Route(i) => router.routes.get(*i).map(|r| r.name.clone()),
        _ => None,
    };
    let headers: Vec<Value> = info
        .headers
        .iter()
        .map(|(n, v)| json!({"name": n, "value": v}))
        .collect();
    json!({
        "call_id": info.call_id,
        "from": info.from,
        "to": info.to,
        "to_user": info.to_user,
        "p_asserted_identity": info.p_asserted_identity,
        "diversion": info.diversion,
        "source": source.to_string(),
        "headers": headers,
        "matched_route": matched,
    })
}

/// What the hook answered.
#[derive(Clone, Debug, PartialEq)]
pub enum HookAnswer {
    /// `{"route": "<name>" | "default", "bot": {…optional overlay…}}`.
    Route { target: Target, bot: Option<Value> },
    /// `{"reject": {"code": 486, "reason": "Busy Here"}}` (reason optional).
    Reject { code: u16, reason: String },
}

/// Parses the hook's JSON answer; `Err` says why it is unusable (→ fallback).
pub fn parse_hook_answer(body: &[u8], router: &Router) -> Result<HookAnswer, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    if let Some(r) = v.get("reject") {
        let code = r
            .get("code")
            .and_then(Value::as_u64)
            .and_then(|c| u16::try_from(c).ok())
            .filter(|c| check_code(*c))
            .ok_or("reject.code must be a SIP code 400..=699")?;
        let reason = match r.get("reason").and_then(Value::as_str) {
            // A reason phrase goes into a status line: printable ASCII only.
            Some(s) if !s.is_empty() && s.bytes().all(|b| (0x20..0x7f).contains(&b)) => {
                s.to_string()
            }
            _ => reason_phrase(code).to_string(),
        };
        return Ok(HookAnswer::Reject { code, reason });
    }
    let name = v.get("route").and_then(Value::as_str).unwrap_or("default");
    let target = match router.target(name) {
        Some(Target::Reject(_)) | None => return Err(format!("unknown route `{name}`")),
        Some(t) => t,
    };
    let bot = match v.get("bot") {
        None | Some(Value::Null) => None,
        Some(b @ Value::Object(_)) => Some(b.clone()),
        Some(_) => return Err("bot must be an object".into()),
    };
    Ok(HookAnswer::Route { target, bot })
}

#[cfg(test)]
mod tests;
