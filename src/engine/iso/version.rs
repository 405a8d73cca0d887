//! Reads `/version.json` out of a VyOS ISO in-process, without mounting: a small, bounded ISO 9660
//! reader (ECMA-119) that walks only the root directory.
//!
//! Names are matched case-insensitively after dropping the `;1` version suffix and a trailing dot,
//! against three spellings, whichever the image carries: the plain ISO 9660 name of the primary
//! volume descriptor, its Rock Ridge `NM` alternate name (SUSP entries in the record's system-use
//! area, assuming the usual `SP` skip length of 0; continuation areas are not followed) and, if the
//! primary tree has no match, the Joliet tree (UCS-2 big-endian names of the supplementary volume
//! descriptor). Every read is bounded: a few volume descriptors, the root directory up to 4 MiB,
//! `version.json` up to 64 KiB; malformed input yields an error string, never a panic.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// The VyOS build facts recorded in the ISO's `/version.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VyosVersion {
    /// e.g. `1.5-rolling-202409250007`
    pub version: String,
    /// e.g. `generic`
    #[serde(default)]
    pub flavor: Option<String>,
    /// e.g. `amd64`
    #[serde(default)]
    pub architecture: Option<String>,
    /// build UUID
    #[serde(default)]
    pub build_uuid: Option<String>,
    /// vyos-build commit
    #[serde(default)]
    pub build_git: Option<String>,
    /// e.g. `current`, `circinus`
    #[serde(default)]
    pub release_train: Option<String>,
    /// human-readable build date as VyOS writes it
    #[serde(default)]
    pub built_on: Option<String>,
}

/// ISO 9660 logical sector size; volume descriptors and directory record packing use it.
const SECTOR: u64 = 2048;
/// First volume descriptor sector.
const FIRST_DESCRIPTOR: u64 = 16;
/// Volume descriptors examined before giving up on a terminator.
const MAX_DESCRIPTORS: u64 = 32;
/// Largest root directory read.
const MAX_DIR_BYTES: u32 = 4 << 20;
/// Largest `version.json` read.
const MAX_VERSION_JSON: u32 = 64 << 10;

/// The file name looked for (lowercase).
const WANTED: &str = "version.json";

/// Reads and parses `/version.json` from the ISO at `path`. The error is a human-readable reason
/// (callers turn it into a warning).
pub fn read_iso_version(path: &Path) -> Result<VyosVersion, String> {
    let file = File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    let image = Image::new(file)?;
    let extent = image
        .find_version_json()?
        .ok_or_else(|| "the ISO has no /version.json".to_string())?;
    if extent.size > MAX_VERSION_JSON {
        return Err(format!(
            "/version.json is {} bytes, more than the {MAX_VERSION_JSON} accepted",
            extent.size
        ));
    }
    let bytes = image.read_extent(extent)?;
    let parsed: VyosVersion = serde_json::from_slice(&bytes)
        .map_err(|e| format!("/version.json is not valid VyOS version JSON: {e}"))?;
    if parsed.version.trim().is_empty() {
        return Err("/version.json has an empty \"version\"".into());
    }
    Ok(parsed)
}

/// Where a file's data lives.
#[derive(Debug, Clone, Copy)]
struct Extent {
    /// first logical block
    lba: u32,
    /// byte length
    size: u32,
}

/// The root directory of one volume descriptor tree.
#[derive(Debug, Clone, Copy)]
struct Root {
    extent: Extent,
    joliet: bool,
}

struct Image {
    file: File,
    len: u64,
    block_size: u64,
    roots: Vec<Root>,
}

impl Image {
    fn new(file: File) -> Result<Image, String> {
        let len = file
            .metadata()
            .map_err(|e| format!("cannot stat the ISO: {e}"))?
            .len();
        let mut image = Image {
            file,
            len,
            block_size: SECTOR,
            roots: Vec::new(),
        };
        let mut primary = None;
        let mut joliet = None;
        for index in 0..MAX_DESCRIPTORS {
            let mut sector = [0u8; SECTOR as usize];
            image.read_at((FIRST_DESCRIPTOR + index) * SECTOR, &mut sector)?;
            if &sector[1..6] != b"CD001" {
                return Err("not an ISO 9660 image (no CD001 volume descriptor)".into());
            }
            match sector[0] {
                1 if primary.is_none() => {
                    let block_size = u64::from(u16::from_le_bytes([sector[128], sector[129]]));
                    if !matches!(block_size, 512 | 1024 | 2048) {
                        return Err(format!("unsupported logical block size {block_size}"));
                    }
                    image.block_size = block_size;
                    primary = Some(record_extent(&sector[156..190])?);
                }
                2 if joliet.is_none() && is_joliet(&sector[88..120]) => {
                    joliet = Some(record_extent(&sector[156..190])?);
                }
                255 => break,
                _ => {}
            }
        }
        let primary = primary.ok_or("no primary volume descriptor")?;
        image.roots.push(Root {
            extent: primary,
            joliet: false,
        });
        if let Some(extent) = joliet {
            image.roots.push(Root {
                extent,
                joliet: true,
            });
        }
        Ok(image)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), String> {
        let end = offset
            .checked_add(buf.len() as u64)
            .ok_or("offset overflow")?;
        if end > self.len {
            return Err(format!(
                "truncated ISO: needs {end} bytes, file has {}",
                self.len
            ));
        }
        self.file
            .read_exact_at(buf, offset)
            .map_err(|e| format!("cannot read the ISO at {offset}: {e}"))
    }

    fn read_extent(&self, extent: Extent) -> Result<Vec<u8>, String> {
        let offset = u64::from(extent.lba)
            .checked_mul(self.block_size)
            .ok_or("extent offset overflow")?;
        let mut buf = vec![0u8; extent.size as usize];
        self.read_at(offset, &mut buf)?;
        Ok(buf)
    }

    fn find_version_json(&self) -> Result<Option<Extent>, String> {
        for root in &self.roots {
            if root.extent.size > MAX_DIR_BYTES {
                return Err(format!(
                    "root directory is {} bytes, more than the {MAX_DIR_BYTES} accepted",
                    root.extent.size
                ));
            }
            let dir = self.read_extent(root.extent)?;
            if let Some(found) = scan_directory(&dir, root.joliet)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }
}

/// Joliet supplementary descriptors carry one of three UCS-2 escape sequences.
fn is_joliet(escapes: &[u8]) -> bool {
    escapes
        .windows(3)
        .any(|w| w == b"%/@" || w == b"%/C" || w == b"%/E")
}

/// Extent of a directory record (location at bytes 2..6, data length at 10..14, little-endian
/// halves of the both-endian fields).
fn record_extent(record: &[u8]) -> Result<Extent, String> {
    if record.len() < 34 {
        return Err("short directory record".into());
    }
    Ok(Extent {
        lba: u32::from_le_bytes([record[2], record[3], record[4], record[5]]),
        size: u32::from_le_bytes([record[10], record[11], record[12], record[13]]),
    })
}

/// Finds the `version.json` file record in one directory's data.
fn scan_directory(dir: &[u8], joliet: bool) -> Result<Option<Extent>, String> {
    let mut pos = 0usize;
    while pos < dir.len() {
        let len = usize::from(dir[pos]);
        if len == 0 {
            // Records never span a sector; zero padding up to the next one.
            pos = (pos / SECTOR as usize + 1) * SECTOR as usize;
            continue;
        }
        let record = dir
            .get(pos..pos + len)
            .filter(|r| r.len() >= 34)
            .ok_or_else(|| format!("malformed directory record at offset {pos}"))?;
        pos += len;
        let is_dir = record[25] & 0x02 != 0;
        let name_len = usize::from(record[32]);
        let Some(raw_name) = record.get(33..33 + name_len) else {
            return Err("directory record name overruns the record".into());
        };
        if is_dir || raw_name == [0] || raw_name == [1] {
            continue;
        }
        let mut names = Vec::with_capacity(2);
        if joliet {
            names.push(decode_ucs2(raw_name));
        } else {
            names.push(String::from_utf8_lossy(raw_name).into_owned());
            let su_start = 33 + name_len + usize::from(name_len % 2 == 0);
            if let Some(system_use) = record.get(su_start..) {
                if let Some(rr) = rock_ridge_name(system_use) {
                    names.push(rr);
                }
            }
        }
        if names.iter().any(|n| normalize(n) == WANTED) {
            return record_extent(record).map(Some);
        }
    }
    Ok(None)
}

/// The Rock Ridge alternate name (`NM` entries, concatenated) of a system-use area.
fn rock_ridge_name(mut area: &[u8]) -> Option<String> {
    let mut name = Vec::new();
    while area.len() >= 4 {
        let len = usize::from(area[2]);
        if len < 4 || len > area.len() {
            break;
        }
        if &area[0..2] == b"NM" && len >= 5 {
            let flags = area[4];
            if flags & 0x06 == 0 {
                name.extend_from_slice(&area[5..len]);
            }
        }
        if &area[0..2] == b"ST" {
            break;
        }
        area = &area[len..];
    }
    (!name.is_empty()).then(|| String::from_utf8_lossy(&name).into_owned())
}

fn decode_ucs2(raw: &[u8]) -> String {
    let units = raw
        .chunks_exact(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]));
    char::decode_utf16(units)
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect()
}

/// Lowercase, without the `;N` version suffix and a trailing dot.
fn normalize(name: &str) -> String {
    let base = name.split(';').next().unwrap_or(name);
    base.strip_suffix('.').unwrap_or(base).to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn name_normalization_table() {
        for (raw, want) in [
            ("VERSION.JSON;1", "version.json"),
            ("version.json", "version.json"),
            ("VERSION.JSON.;1", "version.json"),
            ("VERSION.JSO;1", "version.jso"),
        ] {
            assert_eq!(normalize(raw), want, "{raw}");
        }
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.iso");
        std::fs::write(&path, vec![0xA5u8; 40 * 2048]).unwrap();
        assert!(read_iso_version(&path).is_err());
        std::fs::write(&path, b"short").unwrap();
        assert!(read_iso_version(&path).is_err());
    }

    #[test]
    fn directory_scan_survives_hostile_records() {
        // A record claiming more bytes than exist, and one whose name overruns it.
        assert!(scan_directory(&[200, 0, 0], false).is_err());
        let mut rec = vec![0u8; 34];
        rec[0] = 34;
        rec[32] = 60;
        assert!(scan_directory(&rec, false).is_err());
        assert_eq!(rock_ridge_name(&[b'N', b'M', 0, 1]), None);
        assert_eq!(
            rock_ridge_name(b"NM\x11\x01\x00version.json"),
            Some("version.json".into())
        );
    }
}
