//! Login sessions: their ids, lifetimes and the CSRF token each one currently expects.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rand::distr::{Alphanumeric, SampleString};

const SESSION_ID_LENGTH: usize = 32;
const CSRF_TOKEN_LENGTH: usize = 64;

fn random_text(length: usize) -> String {
    Alphanumeric.sample_string(&mut rand::rng(), length)
}

/// A new CSRF token; `padded` ends it in base64's `=` padding, as Laravel's encrypted tokens do.
fn new_csrf_token(padded: bool) -> String {
    if padded { format!("{}==", random_text(CSRF_TOKEN_LENGTH - 2)) } else { random_text(CSRF_TOKEN_LENGTH) }
}

#[derive(Debug)]
pub struct Session {
    csrf_token: String,
    /// The token the client was last sent in a `Set-Cookie`; it differs from `csrf_token`
    /// after a rotation until some response carries the new one.
    announced_token: String,
    opened: Instant,
    last_used: Instant,
    unsafe_since_rotation: u32,
    padded: bool,
}

impl Session {
    pub fn accepts_csrf(&self, header: Option<&str>) -> bool {
        header == Some(self.csrf_token.as_str())
    }

    pub fn rotate_csrf(&mut self) {
        self.csrf_token = new_csrf_token(self.padded);
        self.unsafe_since_rotation = 0;
    }

    /// Counts one unsafe request that passed the CSRF check; rotates after every `every`th.
    pub fn count_unsafe(&mut self, every: Option<u32>) {
        self.unsafe_since_rotation += 1;
        if every.is_some_and(|every| self.unsafe_since_rotation >= every) {
            self.rotate_csrf();
        }
    }

    /// The token to send in a `Set-Cookie` now, once per rotation.
    pub fn take_unannounced_token(&mut self) -> Option<String> {
        if self.announced_token == self.csrf_token {
            return None;
        }
        self.announced_token.clone_from(&self.csrf_token);
        Some(self.csrf_token.clone())
    }
}

/// A session just opened by a login.
#[derive(Debug)]
pub struct Opened {
    pub session_id: String,
    pub csrf_token: String,
}

#[derive(Debug)]
pub struct Sessions {
    idle_timeout: Duration,
    absolute_lifetime: Duration,
    padded_tokens: bool,
    by_id: HashMap<String, Session>,
}

impl Sessions {
    pub fn new(idle_timeout: Duration, absolute_lifetime: Duration, padded_tokens: bool) -> Self {
        Sessions { idle_timeout, absolute_lifetime, padded_tokens, by_id: HashMap::new() }
    }

    pub fn open(&mut self, now: Instant) -> Opened {
        let session_id = random_text(SESSION_ID_LENGTH);
        let csrf_token = new_csrf_token(self.padded_tokens);
        let session = Session {
            csrf_token: csrf_token.clone(),
            announced_token: csrf_token.clone(),
            opened: now,
            last_used: now,
            unsafe_since_rotation: 0,
            padded: self.padded_tokens,
        };
        self.by_id.insert(session_id.clone(), session);
        Opened { session_id, csrf_token }
    }

    pub fn close(&mut self, session_id: &str) {
        self.by_id.remove(session_id);
    }

    /// The live session with this id, its idle clock restarted; an expired one is forgotten,
    /// so it answers exactly like an id the server never issued.
    pub fn resume(&mut self, session_id: &str, now: Instant) -> Option<&mut Session> {
        let session = self.by_id.get(session_id)?;
        let idle_over = now.duration_since(session.last_used) >= self.idle_timeout;
        let lifetime_over = now.duration_since(session.opened) >= self.absolute_lifetime;
        if idle_over || lifetime_over {
            self.by_id.remove(session_id);
            return None;
        }
        let session = self.by_id.get_mut(session_id)?;
        session.last_used = now;
        Some(session)
    }

    /// Without touching the idle clock: for work done after a request was already admitted.
    pub fn get_mut(&mut self, session_id: &str) -> Option<&mut Session> {
        self.by_id.get_mut(session_id)
    }

    pub fn expire_all(&mut self) {
        self.by_id.clear();
    }

    pub fn rotate_all(&mut self) {
        self.by_id.values_mut().for_each(Session::rotate_csrf);
    }

    pub fn live_count(&self, now: Instant) -> usize {
        let live = |session: &&Session| {
            now.duration_since(session.last_used) < self.idle_timeout
                && now.duration_since(session.opened) < self.absolute_lifetime
        };
        self.by_id.values().filter(live).count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);

    #[test]
    fn an_idle_session_expires_while_a_used_one_lives_until_its_absolute_lifetime() {
        let mut sessions = Sessions::new(Duration::from_secs(10), Duration::from_secs(25), false);
        let start = Instant::now();
        let idle = sessions.open(start).session_id;
        let used = sessions.open(start).session_id;

        for second in [8, 16, 24] {
            assert!(sessions.resume(&used, start + Duration::from_secs(second)).is_some());
        }

        assert!(sessions.resume(&idle, start + Duration::from_secs(11)).is_none());
        assert!(sessions.resume(&used, start + Duration::from_secs(25)).is_none());
    }

    #[test]
    fn rotation_every_n_unsafe_requests_changes_the_token_once_and_announces_it_once() {
        let mut sessions = Sessions::new(HOUR, HOUR, false);
        let now = Instant::now();
        let opened = sessions.open(now);
        let session = sessions.resume(&opened.session_id, now).unwrap();

        session.count_unsafe(Some(2));
        assert!(session.accepts_csrf(Some(&opened.csrf_token)));
        assert_eq!(session.take_unannounced_token(), None);
        session.count_unsafe(Some(2));

        assert!(!session.accepts_csrf(Some(&opened.csrf_token)));
        let announced = session.take_unannounced_token().unwrap();
        assert!(session.accepts_csrf(Some(&announced)));
        assert_eq!(session.take_unannounced_token(), None);
    }

    #[test]
    fn padded_tokens_end_in_padding_and_stay_padded_after_rotation() {
        let mut sessions = Sessions::new(HOUR, HOUR, true);
        let now = Instant::now();
        let opened = sessions.open(now);
        assert!(opened.csrf_token.ends_with("==") && opened.csrf_token.len() == CSRF_TOKEN_LENGTH);
        let session = sessions.resume(&opened.session_id, now).unwrap();
        session.rotate_csrf();
        assert!(session.take_unannounced_token().is_some_and(|token| token.ends_with("==")));
    }

    #[test]
    fn a_missing_header_never_matches() {
        let mut sessions = Sessions::new(HOUR, HOUR, false);
        let now = Instant::now();
        let opened = sessions.open(now);
        assert!(!sessions.resume(&opened.session_id, now).unwrap().accepts_csrf(None));
    }
}
