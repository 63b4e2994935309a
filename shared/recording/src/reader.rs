//! Opening a recording for playback and export: the footer's index when the file is whole
//! (one seek to the end, no scan), a scan otherwise (a viewer that crashed leaves no footer);
//! and reading records from any record offset, seeking inside the age stream.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use age::x25519::Identity;
use sightline_core::messages::InputEvent;

use crate::error::RecordingError;
use crate::format::{self, kind, FOOTER_LEN, MAGIC};
use crate::index::{ConfigEntry, Index, KeyframeEntry};
use crate::item::{self, Item};
use crate::meta::{self, MetaInfo};
use crate::records::{open_stream, seek_to, Plain, RecordReader};
use crate::scan::scan;

/// A recording opened for reading.
pub struct Recording {
    /// The session's metadata.
    pub meta: MetaInfo,
    /// Time of the last record, microseconds since the recording started.
    pub duration_us: u64,
    /// The first picture size, if any video was recorded.
    pub size: Option<(u32, u32)>,
    /// Every keyframe, in order.
    pub keyframes: Vec<KeyframeEntry>,
    /// Every picture format (size) change, in order.
    pub configs: Vec<ConfigEntry>,
    /// The operator's input, in order (empty when it was not recorded).
    pub inputs: Vec<(u64, InputEvent)>,
    /// Video packets recorded.
    pub video_packets: u64,
    /// Bytes of video packet data recorded.
    pub video_bytes: u64,
    /// Whether the file was finished (footer and index present). An unfinished one (the
    /// viewer stopped without finishing it) was scanned as far as it could be read.
    pub complete: bool,
    /// For an unfinished recording: why the scan stopped where it did.
    pub stopped: Option<String>,
    path: PathBuf,
    identities: Vec<Identity>,
    /// Where the records end (the Index's offset, or how far the scan got).
    data_end: u64,
}

impl std::fmt::Debug for Recording {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recording")
            .field("path", &self.path)
            .field("meta", &self.meta)
            .field("duration_us", &self.duration_us)
            .field("size", &self.size)
            .field("keyframes", &self.keyframes.len())
            .field("complete", &self.complete)
            .finish_non_exhaustive()
    }
}

impl Recording {
    /// Opens `path` with one of `identities`: reads the Meta record, then the index through the
    /// footer; without a usable footer, scans the whole file.
    pub fn open(path: &Path, identities: &[Identity]) -> Result<Recording, RecordingError> {
        let mut plain = open_stream(path, identities)?;
        let mut rr = RecordReader::new(&mut plain, 0);
        rr.read_magic()?;
        let first = rr.next()?.ok_or(RecordingError::Truncated {
            near: MAGIC.len() as u64,
        })?;
        if first.header.kind != kind::META {
            return Err(RecordingError::BadRecord {
                offset: first.offset,
                why: "the first record is not the metadata".into(),
            });
        }
        let meta = meta::decode(&first.payload, first.offset)?;
        let after_meta = rr.pos();
        let (index, data_end, complete, stopped) = match read_index(&mut plain) {
            Ok((index, index_offset)) => (index, index_offset, true, None),
            Err(_) => {
                // No usable footer: read everything there is, in order.
                let mut plain = open_stream(path, identities)?;
                seek_to(&mut plain, after_meta)?;
                let scan = scan(RecordReader::new(&mut plain, after_meta));
                (
                    scan.index,
                    scan.end,
                    false,
                    scan.stopped.map(|e| e.to_string()),
                )
            }
        };
        let mut rec = Recording {
            meta,
            duration_us: index.duration_us,
            size: index.configs.first().map(|c| (c.width, c.height)),
            keyframes: index.keyframes,
            configs: index.configs,
            inputs: Vec::new(),
            video_packets: index.video_packets,
            video_bytes: index.video_bytes,
            complete,
            stopped,
            path: path.to_path_buf(),
            identities: identities.to_vec(),
            data_end,
        };
        rec.inputs = match index.inputs {
            Some(inputs) => inputs,
            // Too many to list in the index: collect them from the records.
            None => {
                let mut plain = open_stream(path, identities)?;
                seek_to(&mut plain, after_meta)?;
                scan(RecordReader::new(&mut plain, after_meta))
                    .index
                    .inputs
                    .unwrap_or_default()
            }
        };
        Ok(rec)
    }

    /// The last keyframe at or before `at_us` (the first one if `at_us` is before it).
    pub fn keyframe_at_or_before(&self, at_us: u64) -> Option<&KeyframeEntry> {
        let after = self.keyframes.partition_point(|k| k.at_us <= at_us);
        self.keyframes.get(after.saturating_sub(1))
    }

    /// The items from the record at plaintext `offset` (a [`KeyframeEntry::offset`], or 0 for
    /// the beginning), in order, until the end of the records.
    pub fn items_from(&self, offset: u64) -> Result<Items, RecordingError> {
        let offset = offset.max(MAGIC.len() as u64);
        if offset > self.data_end {
            return Err(RecordingError::BadRecord {
                offset,
                why: format!("past the end of the records ({})", self.data_end),
            });
        }
        let mut plain = open_stream(&self.path, &self.identities)?;
        seek_to(&mut plain, offset)?;
        Ok(Items {
            records: RecordReader::new(plain, offset),
            end: self.data_end,
            done: false,
        })
    }

    /// Every item from the beginning (the Meta record first).
    pub fn items(&self) -> Result<Items, RecordingError> {
        self.items_from(0)
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Items in file order, each with its time (microseconds since the recording started). An
/// error ends the iteration.
pub struct Items {
    records: RecordReader<Plain>,
    end: u64,
    done: bool,
}

impl std::fmt::Debug for Items {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Items")
            .field("offset", &self.records.pos())
            .field("end", &self.end)
            .field("done", &self.done)
            .finish()
    }
}

impl Items {
    /// Plaintext offset of the next record.
    pub fn offset(&self) -> u64 {
        self.records.pos()
    }
}

impl Iterator for Items {
    type Item = Result<(u64, Item), RecordingError>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            if self.records.pos() >= self.end {
                break;
            }
            let raw = match self.records.next() {
                Ok(Some(raw)) if raw.header.kind != kind::INDEX => raw,
                Ok(_) => break,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            };
            match item::decode(raw.header.kind, raw.payload, raw.offset) {
                Ok(Some(item)) => return Some(Ok((raw.header.at_us, item))),
                Ok(None) => {}
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        self.done = true;
        None
    }
}

/// The index through the footer: (index, the Index record's offset).
fn read_index(plain: &mut Plain) -> Result<(Index, u64), RecordingError> {
    let footer_at = plain
        .seek(SeekFrom::End(-(FOOTER_LEN as i64)))
        .map_err(|e| RecordingError::from_stream(e, 0))?;
    let mut footer = [0u8; FOOTER_LEN];
    plain
        .read_exact(&mut footer)
        .map_err(|e| RecordingError::from_stream(e, footer_at))?;
    let bad = |why: &str| RecordingError::BadRecord {
        offset: footer_at,
        why: why.into(),
    };
    let (index_at, stated) = format::parse_footer(&footer).ok_or_else(|| bad("no footer"))?;
    if stated != footer_at || index_at < MAGIC.len() as u64 || index_at >= footer_at {
        return Err(bad("the footer's offsets do not fit the file"));
    }
    seek_to(plain, index_at)?;
    let mut rr = RecordReader::new(plain, index_at);
    let raw = rr.next()?.ok_or_else(|| bad("no index record"))?;
    if raw.header.kind != kind::INDEX || rr.pos() != footer_at {
        return Err(bad("the footer does not point at the index record"));
    }
    Ok((Index::decode(&raw.payload, index_at)?, index_at))
}
