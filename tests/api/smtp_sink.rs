//! A real SMTP server on a random local port: records every message it takes and fails on demand.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// One message as the sink received it, with its subject and body decoded for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMail {
    /// The envelope sender (`MAIL FROM`).
    pub from: String,
    /// The envelope recipients (`RCPT TO`), in the order given.
    pub to: Vec<String>,
    /// The login of `AUTH PLAIN`/`LOGIN`, when the client authenticated.
    pub username: Option<String>,
    /// The message as sent after `DATA`, dot-stuffing removed.
    pub data: String,
    /// The `Subject` header with RFC 2047 encoded-words decoded.
    pub subject: String,
    /// The body with its transfer encoding undone and line ends as `\n`.
    pub body: String,
}

#[derive(Default)]
struct SinkState {
    messages: Vec<ReceivedMail>,
    failures_left: usize,
    failure_code: u16,
}

pub struct SmtpSink {
    pub address: SocketAddr,
    state: Arc<Mutex<SinkState>>,
    server: JoinHandle<()>,
}

impl SmtpSink {
    pub async fn start() -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.expect("bind the SMTP sink");
        let address = listener.local_addr().expect("the sink's address");
        let state = Arc::new(Mutex::new(SinkState::default()));
        let shared = Arc::clone(&state);
        let server = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, Arc::clone(&shared)));
            }
        });
        Self { address, state, server }
    }

    pub fn url(&self) -> String {
        format!("smtp://{}", self.address)
    }

    pub fn messages(&self) -> Vec<ReceivedMail> {
        lock(&self.state).messages.clone()
    }

    /// Answers the next `count` `MAIL FROM` commands with `code` (451: try later, 550: never).
    pub fn fail_next(&self, count: usize, code: u16) {
        let mut state = lock(&self.state);
        state.failures_left = count;
        state.failure_code = code;
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn lock(state: &Mutex<SinkState>) -> MutexGuard<'_, SinkState> {
    // A test that panicked while holding the lock must not hide the other tests' messages.
    state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The envelope of the transaction in progress.
#[derive(Default)]
struct Envelope {
    from: Option<String>,
    to: Vec<String>,
}

async fn serve(stream: TcpStream, state: Arc<Mutex<SinkState>>) -> std::io::Result<()> {
    let (reader, mut writer) = stream.into_split();
    let mut lines = BufReader::new(reader);
    let mut envelope = Envelope::default();
    let mut username = None;
    writer.write_all(b"220 sink ESMTP ready\r\n").await?;
    while let Some(line) = read_line(&mut lines).await? {
        let verb = line.split(' ').next().unwrap_or_default().to_ascii_uppercase();
        let argument = line.get(verb.len()..).unwrap_or_default().trim();
        let reply = match verb.as_str() {
            "EHLO" => "250-sink\r\n250-8BITMIME\r\n250 AUTH PLAIN LOGIN".to_owned(),
            "HELO" | "NOOP" => "250 OK".to_owned(),
            "AUTH" => {
                username = Some(authenticate(argument, &mut lines, &mut writer).await?);
                "235 2.7.0 Authentication successful".to_owned()
            }
            "MAIL" => {
                let mut state = lock(&state);
                if state.failures_left > 0 {
                    state.failures_left -= 1;
                    format!("{} simulated failure", state.failure_code)
                } else {
                    envelope = Envelope { from: Some(address_in(argument)), to: Vec::new() };
                    "250 OK".to_owned()
                }
            }
            "RCPT" if envelope.from.is_some() => {
                envelope.to.push(address_in(argument));
                "250 OK".to_owned()
            }
            "DATA" if !envelope.to.is_empty() => {
                writer.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
                let data = read_data(&mut lines).await?;
                let envelope = std::mem::take(&mut envelope);
                let mail = received(envelope, username.clone(), data);
                lock(&state).messages.push(mail);
                "250 OK queued".to_owned()
            }
            "RCPT" | "DATA" => "503 bad sequence of commands".to_owned(),
            "RSET" => {
                envelope = Envelope::default();
                "250 OK".to_owned()
            }
            "QUIT" => {
                writer.write_all(b"221 bye\r\n").await?;
                return Ok(());
            }
            _ => "502 command not implemented".to_owned(),
        };
        writer.write_all(format!("{reply}\r\n").as_bytes()).await?;
    }
    Ok(())
}

async fn read_line<R>(reader: &mut R) -> std::io::Result<Option<String>>
where
    R: AsyncBufReadExt + Unpin,
{
    let mut line = Vec::new();
    if reader.read_until(b'\n', &mut line).await? == 0 {
        return Ok(None);
    }
    let line = String::from_utf8_lossy(&line);
    Ok(Some(line.trim_end_matches(['\r', '\n']).to_owned()))
}

/// Accepts any credentials and returns the login, so a test can see which one was used.
async fn authenticate<R, W>(argument: &str, reader: &mut R, writer: &mut W) -> std::io::Result<String>
where
    R: AsyncBufReadExt + Unpin,
    W: AsyncWriteExt + Unpin,
{
    let (mechanism, initial) = argument.split_once(' ').unwrap_or((argument, ""));
    let mut ask = async |challenge: &str| -> std::io::Result<String> {
        writer.write_all(format!("334 {}\r\n", BASE64.encode(challenge)).as_bytes()).await?;
        Ok(read_line(reader).await?.unwrap_or_default())
    };
    if mechanism.eq_ignore_ascii_case("LOGIN") {
        let login = ask("Username:").await?;
        ask("Password:").await?;
        return Ok(decoded_text(&login));
    }
    let response = if initial.is_empty() { ask("").await? } else { initial.to_owned() };
    // PLAIN is `authorization-id NUL login NUL password`.
    Ok(decoded_text(&response).split('\0').nth(1).unwrap_or_default().to_owned())
}

async fn read_data<R>(reader: &mut R) -> std::io::Result<String>
where
    R: AsyncBufReadExt + Unpin,
{
    let mut lines = Vec::new();
    while let Some(line) = read_line(reader).await? {
        if line == "." {
            break;
        }
        // The client doubled every leading dot so that no line of the message ends it.
        lines.push(line.strip_prefix('.').filter(|_| line.starts_with("..")).unwrap_or(&line).to_owned());
    }
    Ok(lines.join("\r\n"))
}

fn address_in(argument: &str) -> String {
    let start = argument.find('<').map_or(0, |index| index + 1);
    let end = argument[start..].find('>').map_or(argument.len(), |index| start + index);
    argument[start..end].to_owned()
}

fn received(envelope: Envelope, username: Option<String>, data: String) -> ReceivedMail {
    let (head, body) = data.split_once("\r\n\r\n").unwrap_or((&data, ""));
    // Folded header lines continue the line before them.
    let head = head.replace("\r\n ", " ").replace("\r\n\t", " ");
    let header = |name: &str| {
        head.split("\r\n").find_map(|line| {
            let (key, value) = line.split_once(':')?;
            key.eq_ignore_ascii_case(name).then(|| value.trim().to_owned())
        })
    };
    let body = match header("Content-Transfer-Encoding").map(|value| value.to_ascii_lowercase()) {
        Some(encoding) if encoding == "base64" => decoded_text(body),
        Some(encoding) if encoding == "quoted-printable" => {
            String::from_utf8_lossy(&quoted_printable(body, false)).into_owned()
        }
        _ => body.to_owned(),
    };
    ReceivedMail {
        from: envelope.from.unwrap_or_default(),
        to: envelope.to,
        username,
        subject: decoded_header(&header("Subject").unwrap_or_default()),
        body: body.replace("\r\n", "\n"),
        data,
    }
}

fn decoded_text(base64: &str) -> String {
    let compact: String = base64.split_whitespace().collect();
    let bytes = BASE64.decode(compact).expect("valid base64 from the client");
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Quoted-printable (RFC 2045) or, with `underscore_is_space`, the Q encoding of RFC 2047.
fn quoted_printable(text: &str, underscore_is_space: bool) -> Vec<u8> {
    let text = text.replace("=\r\n", "");
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let escaped = (bytes[index] == b'=')
            .then(|| std::str::from_utf8(bytes.get(index + 1..index + 3)?).ok())
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (escaped, bytes[index]) {
            (Some(byte), _) => {
                decoded.push(byte);
                index += 3;
                continue;
            }
            (None, b'_') if underscore_is_space => decoded.push(b' '),
            (None, byte) => decoded.push(byte),
        }
        index += 1;
    }
    decoded
}

/// Decodes `=?charset?B|Q?text?=` words (UTF-8 assumed); the space between two adjacent words
/// is folding, not text, and a character may be split across words, so bytes are joined first.
fn decoded_header(value: &str) -> String {
    let mut text = String::new();
    let mut pending = Vec::new();
    let mut rest = value;
    while let Some(start) = rest.find("=?") {
        let word = &rest[start + 2..];
        let mut parts = word.splitn(3, '?');
        let (Some(_charset), Some(encoding), Some(tail)) = (parts.next(), parts.next(), parts.next()) else {
            break;
        };
        let Some(end) = tail.find("?=") else { break };
        let between = &rest[..start];
        if pending.is_empty() || !between.trim().is_empty() {
            text.push_str(&String::from_utf8_lossy(&std::mem::take(&mut pending)));
            text.push_str(between);
        }
        let encoded = &tail[..end];
        match encoding.to_ascii_uppercase().as_str() {
            "B" => pending.extend(BASE64.decode(encoded).expect("valid base64 in a header")),
            _ => pending.extend(quoted_printable(encoded, true)),
        }
        rest = &tail[end + 2..];
    }
    text.push_str(&String::from_utf8_lossy(&pending));
    text.push_str(rest);
    text
}
