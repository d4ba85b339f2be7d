//! Which limits apply to a request: per-route rules, exempt paths, costs.
//!
//! Routes are matched by path prefix at a segment boundary (`/search`
//! matches `/search` and `/search/users`, not `/searchlight`), the longest
//! prefix winning, so the rules read like the API's URL map and need no
//! knowledge of the web framework's router.

use std::sync::Arc;

use http::request::Parts;

use crate::layer::key::KeyExtractor;
use crate::limiter::Limit;

type CostFn = dyn Fn(&Parts) -> u64 + Send + Sync;

/// One limit of a rule: a name (for keys and the IETF headers), whom it
/// counts against, and how much they get.
#[derive(Debug, Clone)]
pub struct LimitSpec {
    pub name: String,
    pub key: KeyExtractor,
    pub limit: Limit,
}

impl LimitSpec {
    pub fn new(name: impl Into<String>, key: KeyExtractor, limit: Limit) -> LimitSpec {
        LimitSpec {
            name: name.into(),
            key,
            limit,
        }
    }
}

/// What applies to one endpoint.
#[derive(Clone)]
pub struct Rule {
    /// The endpoint's name in keys and in `rate_limit_rejected_total{endpoint}`.
    pub endpoint: String,
    /// Checked together in one `RL.MCHECK` when there are several: the
    /// request is charged to all of them or to none.
    pub limits: Vec<LimitSpec>,
    pub cost: Option<Arc<CostFn>>,
    /// Count and report would-be denials but let them through.
    pub shadow: bool,
}

impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rule")
            .field("endpoint", &self.endpoint)
            .field("limits", &self.limits)
            .field("cost", &self.cost.is_some())
            .field("shadow", &self.shadow)
            .finish()
    }
}

impl Rule {
    pub fn new(endpoint: impl Into<String>) -> Rule {
        Rule {
            endpoint: endpoint.into(),
            limits: Vec::new(),
            cost: None,
            shadow: false,
        }
    }

    /// A rule with one limit per client IP.
    pub fn per_ip(endpoint: impl Into<String>, limit: Limit) -> Rule {
        Rule::new(endpoint).limit(LimitSpec::new("default", KeyExtractor::ClientIp, limit))
    }

    pub fn limit(mut self, spec: LimitSpec) -> Rule {
        self.limits.push(spec);
        self
    }

    /// Units a request costs (default 1; 0 checks without charging).
    pub fn cost(mut self, f: impl Fn(&Parts) -> u64 + Send + Sync + 'static) -> Rule {
        self.cost = Some(Arc::new(f));
        self
    }

    pub fn shadow(mut self, shadow: bool) -> Rule {
        self.shadow = shadow;
        self
    }

    pub(crate) fn cost_of(&self, parts: &Parts) -> u64 {
        self.cost.as_ref().map_or(1, |f| f(parts))
    }
}

/// A path pattern: a prefix at a segment boundary, or exact with a trailing `$`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PathPattern {
    prefix: String,
    exact: bool,
}

impl PathPattern {
    pub(crate) fn new(pattern: &str) -> PathPattern {
        let (body, exact) = match pattern.strip_suffix('$') {
            Some(b) => (b, true),
            None => (pattern, false),
        };
        let mut prefix = body.trim_end_matches('/').to_owned();
        if !prefix.starts_with('/') {
            prefix.insert(0, '/');
        }
        PathPattern { prefix, exact }
    }

    /// The length matched, for longest-prefix selection.
    pub(crate) fn matches(&self, path: &str) -> Option<usize> {
        if self.prefix == "/" {
            return (!self.exact || path == "/").then_some(1);
        }
        let rest = path.strip_prefix(self.prefix.as_str())?;
        let at_boundary = rest.is_empty() || rest == "/" || (!self.exact && rest.starts_with('/'));
        at_boundary.then_some(self.prefix.len())
    }
}

/// All rules of a layer.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rules {
    pub(crate) routes: Vec<(PathPattern, Rule)>,
    pub(crate) exempt: Vec<PathPattern>,
    pub(crate) default: Option<Rule>,
}

impl Rules {
    pub(crate) fn is_exempt(&self, path: &str) -> bool {
        self.exempt.iter().any(|p| p.matches(path).is_some())
    }

    /// The rule for `path`: the longest matching route, else the default.
    pub(crate) fn rule_for(&self, path: &str) -> Option<&Rule> {
        self.routes
            .iter()
            .filter_map(|(pattern, rule)| pattern.matches(path).map(|len| (len, rule)))
            .max_by_key(|(len, _)| *len)
            .map(|(_, rule)| rule)
            .or(self.default.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_match_at_segment_boundaries() {
        let p = PathPattern::new("/search");
        assert_eq!(p.matches("/search"), Some(7));
        assert_eq!(p.matches("/search/"), Some(7));
        assert_eq!(p.matches("/search/users"), Some(7));
        assert_eq!(p.matches("/searchlight"), None);
        let exact = PathPattern::new("/docs$");
        assert!(exact.matches("/docs").is_some());
        assert!(exact.matches("/docs/x").is_none());
        assert!(PathPattern::new("healthz").matches("/healthz").is_some());
        assert!(PathPattern::new("/").matches("/anything").is_some());
    }

    #[test]
    fn longest_route_wins_and_default_catches_the_rest() {
        let rules = Rules {
            routes: vec![
                (PathPattern::new("/api"), Rule::new("api")),
                (PathPattern::new("/api/search"), Rule::new("search")),
            ],
            exempt: vec![PathPattern::new("/healthz")],
            default: Some(Rule::new("default")),
        };
        let name = |p: &str| rules.rule_for(p).map(|r| r.endpoint.clone());
        assert_eq!(name("/api/search/x").as_deref(), Some("search"));
        assert_eq!(name("/api/other").as_deref(), Some("api"));
        assert_eq!(name("/other").as_deref(), Some("default"));
        assert!(rules.is_exempt("/healthz"));
        assert!(!rules.is_exempt("/healthzz"));
    }
}
