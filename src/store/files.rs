//! Files that come with website leads: kept on disk under their content's SHA-256, outside the
//! database, and handed out only through links this gateway signed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio::fs;
use tokio::io::AsyncWriteExt;
use url::Url;

use crate::domain::Attachment;

#[derive(Clone)]
pub struct FileStore {
    dir: PathBuf,
    link_secret: String,
    /// The gateway's own address, to which file links point.
    public_url: Url,
    /// Stored files whose leads are not committed yet, by hash.
    uncommitted: Arc<Mutex<HashMap<String, Uncommitted>>>,
}

/// A stored file some requests moved into place for leads still being committed. Whether it may
/// be removed is decided when the last of them is settled: only if one of them brought it and
/// none of their leads was committed.
#[derive(Default)]
struct Uncommitted {
    holders: usize,
    brought_here: bool,
    committed: bool,
}

/// Files `keep` moved into place for one lead. Tell it how the lead's commit ended with
/// `rolled_back`; dropping it counts as committed, since a request cut off while its lead was
/// being committed cannot know, and a file must never be missing under a committed lead.
pub struct KeptFiles {
    uncommitted: Arc<Mutex<HashMap<String, Uncommitted>>>,
    files: Vec<(String, PathBuf)>,
}

/// A file being received: written to a temporary name and hashed as it arrives.
pub struct IncomingFile {
    temp_path: PathBuf,
    file: fs::File,
    hasher: Sha256,
    size: u64,
}

/// A received file, complete and synced, still under its temporary name: nothing of it is
/// visible in the store until `keep` moves it into place, so refusing it touches no stored file.
pub struct ReceivedFile {
    temp_path: PathBuf,
    pub attachment: Attachment,
}

impl FileStore {
    /// # Errors
    /// When the directory cannot be created.
    pub async fn open(dir: &Path, link_secret: String, public_url: Url) -> std::io::Result<Self> {
        fs::create_dir_all(dir.join("incoming")).await?;
        Ok(Self { dir: dir.to_owned(), link_secret, public_url, uncommitted: Arc::default() })
    }

    /// The store as commands that only remove files use it: it signs no links.
    pub fn for_upkeep(dir: &Path) -> Self {
        let public_url = Url::parse("http://localhost/").expect("a constant URL parses");
        Self { dir: dir.to_owned(), link_secret: String::new(), public_url, uncommitted: Arc::default() }
    }

    /// Removes the stored file `sha256` unless a lead still links it. Content is shared between
    /// leads, so a lead keeping the same content at this moment must not lose it: the file is first
    /// moved aside, then looked for among the leads being committed and in the store, and only
    /// then removed (or moved back). A request that finds it moved aside brings its own copy.
    ///
    /// # Errors
    /// When the store cannot be asked or the file cannot be moved; it is then left in place.
    pub async fn remove_unlinked(&self, sha256: &str, store: &super::Store) -> anyhow::Result<bool> {
        let is_hash = sha256.len() == 64 && sha256.bytes().all(|byte| byte.is_ascii_hexdigit());
        if !is_hash {
            return Ok(false);
        }
        let path = self.path_of(sha256);
        let aside = path.with_extension("removing");
        match fs::rename(&path, &aside).await {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(error) => return Err(error.into()),
        }
        let being_kept =
            self.uncommitted.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains_key(sha256);
        let linked = match store.file_linked(sha256).await {
            Ok(linked) => linked,
            Err(error) => {
                fs::rename(&aside, &path).await?;
                return Err(error.into());
            }
        };
        if being_kept || linked {
            fs::rename(&aside, &path).await?;
            return Ok(false);
        }
        fs::remove_file(&aside).await?;
        Ok(true)
    }

    /// # Errors
    /// When the temporary file cannot be created.
    pub async fn receive(&self) -> std::io::Result<IncomingFile> {
        let temp_path = self.dir.join("incoming").join(format!("{:032x}", rand::random::<u128>()));
        let file = fs::File::create(&temp_path).await?;
        Ok(IncomingFile { temp_path, file, hasher: Sha256::new(), size: 0 })
    }

    /// Completes a received file: synced, hashed, and described, but not yet in the store.
    ///
    /// # Errors
    /// When the file cannot be synced; it is removed then.
    pub async fn finish(
        &self,
        mut incoming: IncomingFile,
        name: &str,
        content_type: &str,
    ) -> std::io::Result<ReceivedFile> {
        let synced = async {
            incoming.file.flush().await?;
            incoming.file.sync_all().await
        }
        .await;
        if let Err(error) = synced {
            let _ = fs::remove_file(&incoming.temp_path).await;
            return Err(error);
        }
        let sha256 = hex(&incoming.hasher.finalize_reset());
        let url = self.link(&sha256, name);
        let attachment = Attachment {
            sha256,
            name: name.to_owned(),
            content_type: content_type.to_owned(),
            size: incoming.size,
            url,
        };
        Ok(ReceivedFile { temp_path: incoming.temp_path, attachment })
    }

    /// Moves accepted files into the store under their hashes; the same content twice is kept
    /// once. Called before the lead that links them is committed, so a committed lead's files
    /// are always there (a crash in between leaves only an unreferenced file; a failed commit
    /// leaves nothing, see `KeptFiles::rolled_back`).
    ///
    /// # Errors
    /// When a file cannot be moved; then nothing of these files is kept.
    pub async fn keep(&self, files: Vec<ReceivedFile>) -> std::io::Result<KeptFiles> {
        let mut kept = KeptFiles { uncommitted: Arc::clone(&self.uncommitted), files: Vec::new() };
        let mut files = files.into_iter();
        while let Some(file) = files.next() {
            let sha256 = file.attachment.sha256.clone();
            let path = self.path_of(&sha256);
            // Counted before the file is looked at, so a rollback elsewhere cannot remove it
            // between our finding it there and our lead's commit.
            self.settled(|uncommitted| uncommitted.entry(sha256.clone()).or_default().holders += 1);
            kept.files.push((sha256.clone(), path.clone()));
            let moved = async {
                if fs::try_exists(&path).await? {
                    fs::remove_file(&file.temp_path).await.map(|()| false)
                } else {
                    fs::create_dir_all(path.parent().unwrap_or(&self.dir)).await?;
                    fs::rename(&file.temp_path, &path).await.map(|()| true)
                }
            }
            .await;
            match moved {
                Ok(brought_here) => self.settled(|uncommitted| {
                    if let Some(entry) = uncommitted.get_mut(&sha256) {
                        entry.brought_here |= brought_here;
                    }
                }),
                Err(error) => {
                    self.discard(std::iter::once(file).chain(files).collect()).await;
                    kept.rolled_back();
                    return Err(error);
                }
            }
        }
        Ok(kept)
    }

    fn settled(&self, change: impl FnOnce(&mut HashMap<String, Uncommitted>)) {
        change(&mut self.uncommitted.lock().unwrap_or_else(std::sync::PoisonError::into_inner));
    }

    /// Removes received files that will not be kept.
    pub async fn discard(&self, files: Vec<ReceivedFile>) {
        for file in files {
            let _ = fs::remove_file(&file.temp_path).await;
        }
    }

    pub async fn abandon(&self, incoming: IncomingFile) {
        drop(incoming.file);
        let _ = fs::remove_file(&incoming.temp_path).await;
    }

    /// A stored file's content, for CRMs that take the file itself rather than a link.
    ///
    /// # Errors
    /// When `sha256` names no stored file or it cannot be read.
    pub async fn content(&self, sha256: &str) -> std::io::Result<bytes::Bytes> {
        let is_hash = sha256.len() == 64 && sha256.bytes().all(|byte| byte.is_ascii_hexdigit());
        if !is_hash {
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a SHA-256 in hex"));
        }
        fs::read(self.path_of(sha256)).await.map(bytes::Bytes::from)
    }

    /// The stored file's path when `token` is the one this gateway signed for it.
    pub fn open_link(&self, sha256: &str, token: &str) -> Option<PathBuf> {
        let is_hash = sha256.len() == 64 && sha256.bytes().all(|byte| byte.is_ascii_hexdigit());
        let expected = self.token(sha256);
        (is_hash && bool::from(expected.as_bytes().ct_eq(token.as_bytes()))).then(|| self.path_of(sha256))
    }

    fn link(&self, sha256: &str, name: &str) -> String {
        let mut url = self.public_url.clone();
        url.path_segments_mut()
            .map(|mut segments| {
                segments.pop_if_empty().extend(["files", sha256, &self.token(sha256), name]);
            })
            .ok();
        url.to_string()
    }

    /// An HMAC of the hash: knowing a file's content is not enough to download it from here.
    fn token(&self, sha256: &str) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(self.link_secret.as_bytes()).expect("HMAC takes any key length");
        mac.update(sha256.as_bytes());
        hex(&mac.finalize().into_bytes()[..16])
    }

    fn path_of(&self, sha256: &str) -> PathBuf {
        self.dir.join(&sha256[..2]).join(sha256)
    }
}

impl IncomingFile {
    /// # Errors
    /// When the chunk cannot be written.
    pub async fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        self.hasher.update(chunk);
        self.size += chunk.len() as u64;
        self.file.write_all(chunk).await
    }

    pub fn size(&self) -> u64 {
        self.size
    }
}

impl KeptFiles {
    /// The lead linking these files was not committed: each file that only this request (or
    /// others that failed alike) brought into the store is removed again.
    pub fn rolled_back(mut self) {
        self.release(false);
    }

    fn release(&mut self, committed: bool) {
        let mut uncommitted = self.uncommitted.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for (sha256, path) in self.files.drain(..) {
            let Some(entry) = uncommitted.get_mut(&sha256) else { continue };
            entry.holders -= 1;
            entry.committed |= committed;
            if entry.holders > 0 {
                continue;
            }
            if entry.brought_here && !entry.committed {
                // Removed under the lock: a request keeping the same content meanwhile must
                // either be counted above or find the file gone and bring its own.
                let _ = std::fs::remove_file(&path);
            }
            uncommitted.remove(&sha256);
        }
    }
}

impl Drop for KeptFiles {
    fn drop(&mut self) {
        self.release(true);
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_file_is_kept_once_under_its_hash_and_only_its_signed_link_opens_it() {
        let dir = tempfile::tempdir().unwrap();
        let public_url = Url::parse("https://gate.example/").unwrap();
        let store = FileStore::open(dir.path(), "secret".to_owned(), public_url).await.unwrap();
        let mut received = Vec::new();
        for _ in 0..2 {
            let mut incoming = store.receive().await.unwrap();
            incoming.write(b"hello ").await.unwrap();
            incoming.write(b"world").await.unwrap();
            received.push(store.finish(incoming, "письмо.txt", "text/plain").await.unwrap());
        }
        let first = received[0].attachment.clone();
        assert_eq!(first.sha256, "b94d27b9934d3e08a52e52d7da7dabfac484efe37a5380ee9088f7ace2efcde9");
        assert_eq!(first.size, 11);
        let segments: Vec<&str> = first.url.rsplitn(3, '/').collect();
        let token = segments[1].to_owned();
        assert!(!store.path_of(&first.sha256).exists(), "nothing is in the store before it is kept");
        store.keep(received).await.unwrap();
        let sha256 = first.sha256.as_str();
        assert_eq!(std::fs::read(store.open_link(sha256, &token).unwrap()).unwrap(), b"hello world");
        assert!(store.open_link(sha256, "0123456789abcdef0123456789abcdef").is_none());
        assert!(store.open_link("../../etc/passwd", &token).is_none());
        assert_eq!(std::fs::read_dir(dir.path().join("incoming")).unwrap().count(), 0);
    }

    async fn received(store: &FileStore, content: &[u8]) -> ReceivedFile {
        let mut incoming = store.receive().await.unwrap();
        incoming.write(content).await.unwrap();
        store.finish(incoming, "скан.pdf", "application/pdf").await.unwrap()
    }

    #[tokio::test]
    async fn a_rolled_back_lead_takes_away_only_the_files_nobody_else_holds() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStore::open(dir.path(), "secret".to_owned(), Url::parse("https://gate.example/").unwrap())
            .await
            .unwrap();
        let alone = received(&store, b"only mine").await;
        let alone_path = store.path_of(&alone.attachment.sha256);
        store.keep(vec![alone]).await.unwrap().rolled_back();
        assert!(!alone_path.exists(), "a file only a failed lead brought is removed");

        // Two requests with the same content: one lead fails, the other is committed.
        let first = store.keep(vec![received(&store, b"shared").await]).await.unwrap();
        let second = store.keep(vec![received(&store, b"shared").await]).await.unwrap();
        let shared_path = first.files[0].1.clone();
        first.rolled_back();
        assert!(shared_path.exists(), "another request still holds it");
        drop(second);
        assert!(shared_path.exists(), "a committed lead's file stays");

        // A file committed earlier is never taken away by a later failure.
        store.keep(vec![received(&store, b"shared").await]).await.unwrap().rolled_back();
        assert!(shared_path.exists());
        assert!(store.uncommitted.lock().unwrap().is_empty());
    }
}
