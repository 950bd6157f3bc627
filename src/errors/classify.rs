//! Telling user errors (the caller's mistake, HTTP 4xx) from failures worth an
//! `UNHANDLED_EXCEPTION`: the rules that read the statuses errors carry (`status.rs`,
//! `reqwest_versions.rs`) along their `source()` chains.

use std::error::Error;
use std::fmt;
use std::sync::Arc;

use super::reqwest_versions;
use super::status::{HttpError, read_status};
use crate::status_class::StatusClass;

/// Causes followed at most: a longer (or cyclic) `source()` chain is cut here.
pub const MAX_CAUSES: usize = 32;

/// Whether `status` marks the caller's mistake: 4xx except 408 (timeout) and 429 (rate
/// limit), which are the server's or the moment's.
#[must_use]
pub fn is_user_status(status: u16) -> bool {
    StatusClass::of(status).is_callers_mistake()
}

/// Whether `err` is a user error: it, or an error in its `source()` chain (nearest first;
/// the first that matches wins), carries an HTTP status for which [`is_user_status`] holds.
/// Recognises [`HttpError`] and `reqwest::Error` of the versions whose features are on
/// (`reqwest-0-13`, on by default, and `reqwest-0-12`); use a reporter's classification
/// ([`Builder::status_error`](crate::Builder::status_error),
/// [`Builder::user_error_classifier`](crate::Builder::user_error_classifier)) for more. At most
/// [`MAX_CAUSES`] causes are followed, so a cyclic chain cannot hang it.
///
/// Works on `anyhow::Error` through `&*err` or `err.as_ref()`, and on `Box<dyn Error>`
/// through `&*err`.
#[must_use]
pub fn is_user_error(err: &(dyn Error + 'static)) -> bool {
    Classifier::default().user_error(err).is_some()
}

/// Reads a status (and body) off one error, if it is of a known type.
pub(crate) type StatusReader =
    Arc<dyn Fn(&(dyn Error + 'static)) -> Option<(u16, Option<String>)> + Send + Sync>;

/// A custom user-error rule: `Some(true)` a user error, `Some(false)` not, `None` undecided.
pub(crate) type CustomRule = Arc<dyn Fn(&(dyn Error + 'static)) -> Option<bool> + Send + Sync>;

/// What a reporter knows about telling user errors apart.
#[derive(Clone, Default)]
pub(crate) struct Classifier {
    pub(crate) readers: Vec<StatusReader>,
    pub(crate) custom: Option<CustomRule>,
}

impl fmt::Debug for Classifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Classifier")
            .field("status_types", &self.readers.len())
            .field("custom", &self.custom.is_some())
            .finish()
    }
}

/// A user error's details, from the error in the chain that matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UserErrorInfo {
    pub(crate) status_code: Option<u16>,
    pub(crate) body: Option<String>,
}

impl Classifier {
    fn status(&self, err: &(dyn Error + 'static)) -> Option<(u16, Option<String>)> {
        read_status::<HttpError>(err)
            .or_else(|| reqwest_versions::status(err))
            .or_else(|| self.readers.iter().find_map(|read| read(err)))
    }

    /// `Some` with the matching error's status and body when `err` is a user error.
    pub(crate) fn user_error(&self, err: &(dyn Error + 'static)) -> Option<UserErrorInfo> {
        for e in chain(err) {
            let status = self.status(e);
            if let Some(rule) = &self.custom {
                match rule(e) {
                    Some(true) => {
                        let (status_code, body) = status.map_or((None, None), |(s, b)| (Some(s), b));
                        return Some(UserErrorInfo { status_code, body });
                    }
                    Some(false) => return None,
                    None => {}
                }
            }
            if let Some((code, body)) = status {
                if is_user_status(code) {
                    return Some(UserErrorInfo { status_code: Some(code), body });
                }
            }
        }
        None
    }
}

/// `err` and its causes, nearest first, at most [`MAX_CAUSES`] + 1 of them.
pub(crate) fn chain<'a>(err: &'a (dyn Error + 'static)) -> impl Iterator<Item = &'a (dyn Error + 'static)> {
    std::iter::successors(Some(err), |e: &&'a (dyn Error + 'static)| (*e).source()).take(MAX_CAUSES + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_statuses() {
        for s in [400, 401, 403, 404, 409, 413, 422, 499] {
            assert!(is_user_status(s), "{s}");
        }
        for s in [200, 399, 408, 429, 500, 503] {
            assert!(!is_user_status(s), "{s}");
        }
    }

    /// An error with an optional cause, to build chains of any length.
    #[derive(Debug)]
    struct Link(Option<Box<dyn Error + Send + Sync + 'static>>);

    impl fmt::Display for Link {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("link")
        }
    }

    impl Error for Link {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            self.0.as_deref().map(|e| e as &(dyn Error + 'static))
        }
    }

    /// `depth` links wrapping `cause`: `cause` is at position `depth` of the chain.
    fn wrapped(depth: usize, cause: HttpError) -> Box<dyn Error + Send + Sync> {
        (0..depth).fold(Box::new(cause), |inner, _| Box::new(Link(Some(inner))))
    }

    #[test]
    fn a_status_anywhere_in_the_followed_chain_decides_and_the_nearest_wins() {
        assert!(is_user_error(&HttpError::new(404, "gone")));
        assert!(!is_user_error(&HttpError::new(500, "down")));
        assert!(!is_user_error(&Link(None)), "no status: not a user error");
        let deepest = wrapped(MAX_CAUSES, HttpError::new(404, "deep"));
        assert!(is_user_error(&*deepest), "the cause at MAX_CAUSES is followed");
        let beyond = wrapped(MAX_CAUSES + 1, HttpError::new(404, "too deep"));
        assert!(!is_user_error(&*beyond), "causes past MAX_CAUSES are not");
        let outer_400 = Link(Some(Box::new(HttpError::new(400, "outer").with_body("b"))));
        let info = Classifier::default().user_error(&outer_400).unwrap();
        assert_eq!(info, UserErrorInfo { status_code: Some(400), body: Some("b".into()) });
        let server_then_user = wrapped(2, HttpError::new(422, "inner"));
        let info = Classifier::default().user_error(&*server_then_user).unwrap();
        assert_eq!(info.status_code, Some(422));
    }

    #[test]
    fn a_custom_rule_decides_before_the_status_and_undecided_falls_through() {
        let rule = |verdict: Option<bool>| Classifier {
            readers: Vec::new(),
            custom: Some(Arc::new(move |_: &(dyn Error + 'static)| verdict)),
        };
        let err = HttpError::new(503, "busy").with_body("later");
        let info = rule(Some(true)).user_error(&err).unwrap();
        assert_eq!(info, UserErrorInfo { status_code: Some(503), body: Some("later".into()) });
        assert_eq!(rule(Some(true)).user_error(&Link(None)).unwrap().status_code, None);
        assert_eq!(rule(Some(false)).user_error(&HttpError::new(404, "x")), None, "a no is final");
        assert!(rule(None).user_error(&HttpError::new(404, "x")).is_some(), "undecided: the status");
        assert!(rule(None).user_error(&HttpError::new(500, "x")).is_none());
    }

    #[test]
    fn a_reporter_reads_statuses_of_its_own_types() {
        let reader: StatusReader =
            Arc::new(|e: &(dyn Error + 'static)| e.is::<Link>().then_some((409, None)));
        let classifier = Classifier { readers: vec![reader], custom: None };
        assert_eq!(classifier.user_error(&Link(None)).unwrap().status_code, Some(409));
        assert!(Classifier::default().user_error(&Link(None)).is_none());
        let shown = format!("{classifier:?}");
        assert_eq!(shown, "Classifier { status_types: 1, custom: false }");
    }
}
