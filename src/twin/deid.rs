//! De-identification at the door: DICOM PS3.15 Annex E, Basic Application Level
//! Confidentiality Profile, applied to every dataset the importer reads before anything else
//! looks at it.
//!
//! This module owns:
//! - [`PseudonymKey`]: the installation's secret key (`$XDG_CONFIG_HOME/haptwin/pseudonym.key`,
//!   else `~/.config/haptwin/pseudonym.key`, created on first use with 32 random bytes), and
//!   the keyed hash (HMAC-SHA-256) that turns identifiers into pseudonyms;
//! - [`UidMap`]: UID replacement (action U), one-to-one and consistent within an import
//!   (and, because it is keyed, across imports with the same key);
//! - [`Deidentifier`]: the profile itself, applied to a whole file (meta group included).
//!
//! Contract, for every dataset passed to [`Deidentifier::apply`]:
//! - every private element (odd group) is removed, at every nesting depth;
//! - the profile's tags ([`PROFILE`]) are emptied (Z), replaced by a dummy (D) or removed (X),
//!   inside sequences too; as catch-alls every person name (PN) is emptied, every date, time and
//!   date-time (DA, TM, DT) is emptied and every age (AS) removed, wherever it is;
//! - every UID that is not a DICOM-defined one (root `1.2.840.10008.`) is replaced through the
//!   [`UidMap`], inside sequences and in the meta group (MediaStorageSOPInstanceUID); the meta
//!   group's application entity titles and private information are dropped;
//! - PatientIdentityRemoved (0012,0062) = `YES`, DeidentificationMethod (0012,0063) and
//!   DeidentificationMethodCodeSequence (0012,0064) with `DCM 113100` are set;
//! - the pseudonymous case id is `case-` and 12 hex digits of HMAC-SHA-256(key, original
//!   StudyInstanceUID): stable for one key and study, not computable without the key.
//!
//! Burned-in text in pixels cannot be cleaned here: the importer refuses images that say they
//! have it (`BurnedInAnnotation = YES`).

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use dicom_core::header::Header;
use dicom_core::value::{DataSetSequence, Value};
use dicom_core::{DataElement, Length, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::{FileDicomObject, InMemDicomObject};
use sha2::{Digest, Sha256};

use super::provenance::Deidentification;

/// The method named in provenance and in DeidentificationMethod (0012,0063).
pub const METHOD: &str = "DICOM PS3.15 Annex E Basic Application Level Confidentiality Profile";
/// CID 7050 code of the basic profile.
pub const BASIC_PROFILE_CODE: &str = "113100";
/// Root of the UIDs that DICOM itself defines (SOP classes, transfer syntaxes): kept.
const DICOM_UID_ROOT: &str = "1.2.840.10008.";

/// What the profile does to an attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Z: replace with a zero-length value.
    Zero,
    /// D: replace with a dummy value (the case id).
    DummyCaseId,
    /// X: remove.
    Remove,
}

/// The attributes the profile acts on by tag (UIDs, private tags, person names and dates are
/// handled by VR, see the module doc). Retired tags are listed too: old files still hold them.
#[allow(deprecated)]
pub const PROFILE: &[(Tag, Action)] = &[
    // Patient.
    (tags::PATIENT_NAME, Action::DummyCaseId),
    (tags::PATIENT_ID, Action::DummyCaseId),
    (tags::PATIENT_BIRTH_DATE, Action::Zero),
    (tags::PATIENT_BIRTH_TIME, Action::Remove),
    (tags::PATIENT_SEX, Action::Zero),
    (tags::PATIENT_AGE, Action::Remove),
    (tags::PATIENT_SIZE, Action::Remove),
    (tags::PATIENT_WEIGHT, Action::Remove),
    (tags::PATIENT_ADDRESS, Action::Remove),
    (tags::PATIENT_TELEPHONE_NUMBERS, Action::Remove),
    (tags::PATIENT_TELECOM_INFORMATION, Action::Remove),
    (tags::OTHER_PATIENT_I_DS, Action::Remove),
    (tags::OTHER_PATIENT_I_DS_SEQUENCE, Action::Remove),
    (tags::OTHER_PATIENT_NAMES, Action::Remove),
    (tags::PATIENT_BIRTH_NAME, Action::Remove),
    (tags::PATIENT_MOTHER_BIRTH_NAME, Action::Remove),
    (tags::ISSUER_OF_PATIENT_ID, Action::Remove),
    (tags::ETHNIC_GROUP, Action::Remove),
    (tags::ETHNIC_GROUPS, Action::Remove),
    (tags::OCCUPATION, Action::Remove),
    (tags::MILITARY_RANK, Action::Remove),
    (tags::BRANCH_OF_SERVICE, Action::Remove),
    (tags::MEDICAL_RECORD_LOCATOR, Action::Remove),
    (tags::MEDICAL_ALERTS, Action::Remove),
    (tags::ALLERGIES, Action::Remove),
    (tags::COUNTRY_OF_RESIDENCE, Action::Remove),
    (tags::REGION_OF_RESIDENCE, Action::Remove),
    (tags::PATIENT_RELIGIOUS_PREFERENCE, Action::Remove),
    (tags::PATIENT_COMMENTS, Action::Remove),
    (tags::ADDITIONAL_PATIENT_HISTORY, Action::Remove),
    (tags::PREGNANCY_STATUS, Action::Remove),
    (tags::SMOKING_STATUS, Action::Remove),
    (tags::LAST_MENSTRUAL_DATE, Action::Remove),
    (tags::RESPONSIBLE_PERSON, Action::Remove),
    (tags::RESPONSIBLE_ORGANIZATION, Action::Remove),
    (tags::PATIENT_INSTITUTION_RESIDENCE, Action::Remove),
    (tags::CURRENT_PATIENT_LOCATION, Action::Remove),
    (tags::PATIENT_STATE, Action::Remove),
    (tags::PATIENT_TRANSPORT_ARRANGEMENTS, Action::Remove),
    (tags::REFERENCED_PATIENT_SEQUENCE, Action::Remove),
    (tags::REFERENCED_PATIENT_PHOTO_SEQUENCE, Action::Remove),
    (tags::REFERENCED_PATIENT_ALIAS_SEQUENCE, Action::Remove),
    // Study and visit.
    (tags::STUDY_DATE, Action::Zero),
    (tags::STUDY_TIME, Action::Zero),
    (tags::CONTENT_DATE, Action::Zero),
    (tags::CONTENT_TIME, Action::Zero),
    (tags::ACCESSION_NUMBER, Action::Zero),
    (tags::ISSUER_OF_ACCESSION_NUMBER_SEQUENCE, Action::Remove),
    (tags::REFERRING_PHYSICIAN_NAME, Action::Zero),
    (tags::REFERRING_PHYSICIAN_ADDRESS, Action::Remove),
    (tags::REFERRING_PHYSICIAN_TELEPHONE_NUMBERS, Action::Remove),
    (
        tags::REFERRING_PHYSICIAN_IDENTIFICATION_SEQUENCE,
        Action::Remove,
    ),
    (tags::STUDY_ID, Action::Zero),
    (tags::STUDY_DESCRIPTION, Action::Remove),
    (tags::STUDY_COMMENTS, Action::Remove),
    (tags::SERIES_DESCRIPTION, Action::Remove),
    (tags::SERIES_DESCRIPTION_CODE_SEQUENCE, Action::Remove),
    (tags::IMAGE_COMMENTS, Action::Remove),
    (tags::FRAME_COMMENTS, Action::Remove),
    (tags::TEXT_COMMENTS, Action::Remove),
    (tags::PROTOCOL_NAME, Action::Remove),
    (tags::DERIVATION_DESCRIPTION, Action::Remove),
    (tags::ADMITTING_DIAGNOSES_DESCRIPTION, Action::Remove),
    (tags::ADMITTING_DIAGNOSES_CODE_SEQUENCE, Action::Remove),
    (tags::REQUESTED_PROCEDURE_DESCRIPTION, Action::Remove),
    (tags::PERFORMED_PROCEDURE_STEP_DESCRIPTION, Action::Remove),
    (tags::REQUEST_ATTRIBUTES_SEQUENCE, Action::Remove),
    (tags::REFERENCED_STUDY_SEQUENCE, Action::Remove),
    (tags::REQUESTING_PHYSICIAN, Action::Remove),
    (
        tags::REQUESTING_PHYSICIAN_IDENTIFICATION_SEQUENCE,
        Action::Remove,
    ),
    (tags::REQUESTING_SERVICE, Action::Remove),
    (tags::CONTENT_CREATOR_NAME, Action::Zero),
    // Staff, institution and equipment.
    (tags::INSTITUTION_NAME, Action::Remove),
    (tags::INSTITUTION_ADDRESS, Action::Remove),
    (tags::INSTITUTION_CODE_SEQUENCE, Action::Remove),
    (tags::INSTITUTIONAL_DEPARTMENT_NAME, Action::Remove),
    (tags::STATION_NAME, Action::Remove),
    (tags::STATION_AE_TITLE, Action::Remove),
    (tags::OPERATORS_NAME, Action::Remove),
    (tags::OPERATOR_IDENTIFICATION_SEQUENCE, Action::Remove),
    (tags::PERFORMING_PHYSICIAN_NAME, Action::Remove),
    (
        tags::PERFORMING_PHYSICIAN_IDENTIFICATION_SEQUENCE,
        Action::Remove,
    ),
    (tags::PHYSICIANS_OF_RECORD, Action::Remove),
    (
        tags::PHYSICIANS_OF_RECORD_IDENTIFICATION_SEQUENCE,
        Action::Remove,
    ),
    (tags::NAME_OF_PHYSICIANS_READING_STUDY, Action::Remove),
    (tags::DEVICE_SERIAL_NUMBER, Action::Remove),
    (tags::PLATE_ID, Action::Remove),
    (tags::CASSETTE_ID, Action::Remove),
    (tags::GANTRY_ID, Action::Remove),
    (tags::DETECTOR_ID, Action::Remove),
    (tags::REQUESTING_AE, Action::Remove),
    (tags::TIMEZONE_OFFSET_FROM_UTC, Action::Remove),
];

/// HMAC-SHA-256 (RFC 2104) of the concatenated `parts`.
fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(block.map(|b| b ^ 0x36));
    for p in parts {
        inner.update(p);
    }
    let inner = inner.finalize();
    let mut outer = Sha256::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner);
    outer.finalize().into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Why the pseudonym key could not be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// Neither `$XDG_CONFIG_HOME` nor `$HOME` is set: nowhere to keep the key.
    #[error(
        "no configuration directory ($XDG_CONFIG_HOME and $HOME are unset) for the pseudonym key"
    )]
    NoConfigDir,
    /// The key file could not be read or created.
    #[error("{}: {source}", path.display())]
    Io {
        /// The key file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The key file does not hold at least 16 bytes as hexadecimal.
    #[error("{}: not a pseudonym key (expected 64 hex digits)", path.display())]
    Malformed {
        /// The key file.
        path: PathBuf,
    },
    /// The system's random source failed.
    #[error("no randomness for a new pseudonym key")]
    Random,
}

/// The secret key of pseudonyms and UID replacement. Its `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct PseudonymKey(Vec<u8>);

impl fmt::Debug for PseudonymKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PseudonymKey(..)")
    }
}

impl PseudonymKey {
    /// A key from bytes (tests, or a key managed elsewhere).
    pub fn from_bytes(bytes: &[u8]) -> Self {
        Self(bytes.to_vec())
    }

    /// Where the installation key lives: `$XDG_CONFIG_HOME/haptwin/pseudonym.key`, else
    /// `$HOME/.config/haptwin/pseudonym.key`.
    pub fn default_path() -> Option<PathBuf> {
        let base = std::env::var_os("XDG_CONFIG_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .filter(|v| !v.is_empty())
                    .map(|h| PathBuf::from(h).join(".config"))
            })?;
        Some(base.join("haptwin").join("pseudonym.key"))
    }

    /// The installation key (read, or created on first use).
    pub fn installation() -> Result<Self, KeyError> {
        let path = Self::default_path().ok_or(KeyError::NoConfigDir)?;
        Self::load_or_create(&path)
    }

    /// Reads the key at `path`, or creates it there (32 random bytes, hex, mode 0600).
    pub fn load_or_create(path: &Path) -> Result<Self, KeyError> {
        let io = |source| KeyError::Io {
            path: path.to_path_buf(),
            source,
        };
        match std::fs::read_to_string(path) {
            Ok(text) => return Self::parse(path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        let mut key = [0u8; 32];
        getrandom::fill(&mut key).map_err(|_| KeyError::Random)?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut open = std::fs::OpenOptions::new();
        open.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            open.mode(0o600);
        }
        match open.open(path) {
            Ok(mut f) => {
                use std::io::Write;
                f.write_all(format!("{}\n", hex(&key)).as_bytes())
                    .map_err(io)?;
                Ok(Self(key.to_vec()))
            }
            // Another process created it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                let text = std::fs::read_to_string(path).map_err(io)?;
                Self::parse(path, &text)
            }
            Err(e) => Err(io(e)),
        }
    }

    fn parse(path: &Path, text: &str) -> Result<Self, KeyError> {
        let t = text.trim();
        let bad = || KeyError::Malformed {
            path: path.to_path_buf(),
        };
        if t.len() < 32 || !t.len().is_multiple_of(2) {
            return Err(bad());
        }
        let bytes = (0..t.len())
            .step_by(2)
            .map(|i| t.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(bad)?;
        Ok(Self(bytes))
    }

    /// The keyed hash of `msg` in domain `domain` (domains keep pseudonyms of different kinds
    /// apart).
    pub fn mac(&self, domain: &str, msg: &[u8]) -> [u8; 32] {
        hmac_sha256(&self.0, &[domain.as_bytes(), &[0], msg])
    }

    /// The pseudonymous case id of a study: `case-` and 12 hex digits.
    pub fn case_id(&self, study_instance_uid: &str) -> String {
        let m = self.mac("haptwin-case", study_instance_uid.trim().as_bytes());
        format!("case-{}", hex(&m[..6]))
    }

    /// A short, stable, non-identifying id (8 hex digits) for some text, e.g. a series.
    pub fn short_id(&self, domain: &str, text: &str) -> String {
        hex(&self.mac(domain, text.as_bytes())[..4])
    }
}

/// UID replacement (action U): one-to-one within the map's life, `2.25.<decimal>` UIDs from
/// the keyed hash of the original.
#[derive(Debug)]
pub struct UidMap {
    key: PseudonymKey,
    forward: HashMap<String, String>,
    taken: HashMap<String, String>,
}

impl UidMap {
    /// An empty map under `key`.
    pub fn new(key: PseudonymKey) -> Self {
        Self {
            key,
            forward: HashMap::new(),
            taken: HashMap::new(),
        }
    }

    /// The replacement of `uid` (the same every time it is asked for). DICOM-defined UIDs
    /// (SOP classes, transfer syntaxes) and empty values come back unchanged.
    pub fn map(&mut self, uid: &str) -> String {
        let uid = uid.trim_matches(|c: char| c == '\0' || c.is_whitespace());
        if uid.is_empty() || uid.starts_with(DICOM_UID_ROOT) {
            return uid.to_string();
        }
        if let Some(r) = self.forward.get(uid) {
            return r.clone();
        }
        let mut salt = 0u32;
        let new = loop {
            let mut msg = uid.as_bytes().to_vec();
            msg.extend_from_slice(&salt.to_le_bytes());
            let m = self.key.mac("haptwin-uid", &msg);
            let mut n = [0u8; 16];
            n.copy_from_slice(&m[..16]);
            let cand = format!("2.25.{}", u128::from_be_bytes(n));
            // One-to-one: a (vanishingly unlikely) collision takes the next salt.
            match self.taken.get(&cand) {
                Some(orig) if orig != uid => salt += 1,
                _ => break cand,
            }
        };
        self.taken.insert(new.clone(), uid.to_string());
        self.forward.insert(uid.to_string(), new.clone());
        new
    }

    /// How many distinct UIDs were replaced.
    pub fn len(&self) -> usize {
        self.forward.len()
    }

    /// Whether no UID was replaced yet.
    pub fn is_empty(&self) -> bool {
        self.forward.is_empty()
    }
}

/// What de-identifying one file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileOutcome {
    /// The pseudonymous case id of the file's study.
    pub case_id: String,
    /// Elements removed, emptied or replaced in this file.
    pub elements_changed: u32,
}

/// The basic profile, with the state that must be shared across the files of one import.
#[derive(Debug)]
pub struct Deidentifier {
    key: PseudonymKey,
    uids: UidMap,
    elements_changed: u32,
    files: u32,
}

impl Deidentifier {
    /// A de-identifier under `key`.
    pub fn new(key: PseudonymKey) -> Self {
        Self {
            uids: UidMap::new(key.clone()),
            key,
            elements_changed: 0,
            files: 0,
        }
    }

    /// The key in use.
    pub fn key(&self) -> &PseudonymKey {
        &self.key
    }

    /// The UID map (for checks).
    pub fn uid_map(&self) -> &UidMap {
        &self.uids
    }

    /// De-identifies a whole file, meta group included. See the module doc for the contract.
    pub fn apply(&mut self, obj: &mut FileDicomObject<InMemDicomObject>) -> FileOutcome {
        let case_id = self.case_id_of(obj);
        let mut changed = self.apply_dataset(obj, &case_id);
        let meta = obj.meta_mut();
        let new = self.uids.map(&meta.media_storage_sop_instance_uid);
        if new != meta.media_storage_sop_instance_uid {
            meta.media_storage_sop_instance_uid = new;
            changed += 1;
        }
        for field in [
            &mut meta.source_application_entity_title,
            &mut meta.sending_application_entity_title,
            &mut meta.receiving_application_entity_title,
            &mut meta.private_information_creator_uid,
        ] {
            if field.take().is_some() {
                changed += 1;
            }
        }
        if meta.private_information.take().is_some() {
            changed += 1;
        }
        meta.update_information_group_length();
        mark_deidentified(obj);
        self.elements_changed = self.elements_changed.saturating_add(changed);
        self.files += 1;
        FileOutcome {
            case_id,
            elements_changed: changed,
        }
    }

    /// The case id of a dataset's study (from the original StudyInstanceUID, else the series',
    /// else the instance's).
    fn case_id_of(&self, obj: &InMemDicomObject) -> String {
        for tag in [
            tags::STUDY_INSTANCE_UID,
            tags::SERIES_INSTANCE_UID,
            tags::SOP_INSTANCE_UID,
        ] {
            if let Some(uid) = obj.get(tag).and_then(|e| e.to_str().ok()) {
                let uid = uid.trim_matches(|c: char| c == '\0' || c.is_whitespace());
                if !uid.is_empty() {
                    return self.key.case_id(uid);
                }
            }
        }
        self.key.case_id("")
    }

    /// De-identifies one dataset (recursively); returns the elements changed.
    fn apply_dataset(&mut self, ds: &mut InMemDicomObject, case_id: &str) -> u32 {
        let mut changed = 0u32;
        let entries: Vec<(Tag, VR)> = ds.iter().map(|e| (e.tag(), e.vr())).collect();
        for (tag, vr) in entries {
            let action = if tag.group() % 2 == 1 || is_overlay_or_curve_text(tag) || vr == VR::AS {
                Some(Action::Remove)
            } else if let Some((_, a)) = PROFILE.iter().find(|(t, _)| *t == tag) {
                Some(*a)
            } else if matches!(vr, VR::PN | VR::DA | VR::TM | VR::DT) {
                Some(Action::Zero)
            } else {
                None
            };
            match action {
                Some(Action::Remove) => {
                    ds.remove_element(tag);
                    changed += 1;
                }
                Some(Action::Zero) => {
                    ds.put(DataElement::new(tag, vr, PrimitiveValue::Empty));
                    changed += 1;
                }
                Some(Action::DummyCaseId) => {
                    ds.put(DataElement::new(
                        tag,
                        vr,
                        PrimitiveValue::from(case_id.to_string()),
                    ));
                    changed += 1;
                }
                None if vr == VR::UI => {
                    let Some(old) = ds
                        .get(tag)
                        .and_then(|e| e.to_str().ok())
                        .map(|s| s.into_owned())
                    else {
                        continue;
                    };
                    let new: Vec<String> = old.split('\\').map(|u| self.uids.map(u)).collect();
                    let new = new.join("\\");
                    if new != old.trim_end_matches(['\0', ' ']) {
                        ds.put(DataElement::new(tag, VR::UI, PrimitiveValue::from(new)));
                        changed += 1;
                    }
                }
                None if vr == VR::SQ => {
                    let mut inner = 0u32;
                    ds.update_value(tag, |v| {
                        if let Some(items) = v.items_mut() {
                            for item in items.iter_mut() {
                                inner += self.apply_dataset(item, case_id);
                            }
                        }
                    });
                    changed += inner;
                }
                None => {}
            }
        }
        changed
    }

    /// What was done, for provenance.
    pub fn summary(&self) -> Deidentification {
        Deidentification {
            method: METHOD.to_string(),
            codes: vec![BASIC_PROFILE_CODE.to_string()],
            elements_changed: self.elements_changed,
        }
    }

    /// Files de-identified so far.
    pub fn files(&self) -> u32 {
        self.files
    }
}

/// Overlay data and comments (60xx,3000 / 60xx,4000) and retired curve data (50xx): may hold
/// text.
fn is_overlay_or_curve_text(tag: Tag) -> bool {
    let g = tag.group();
    ((0x6000..=0x60FF).contains(&g) && (tag.element() == 0x3000 || tag.element() == 0x4000))
        || (0x5000..=0x50FF).contains(&g)
}

/// Sets PatientIdentityRemoved, DeidentificationMethod and its code sequence.
fn mark_deidentified(ds: &mut InMemDicomObject) {
    ds.put(DataElement::new(
        tags::PATIENT_IDENTITY_REMOVED,
        VR::CS,
        PrimitiveValue::from("YES"),
    ));
    ds.put(DataElement::new(
        tags::DEIDENTIFICATION_METHOD,
        VR::LO,
        PrimitiveValue::from("haptwin: PS3.15 E basic profile"),
    ));
    let item = InMemDicomObject::from_element_iter([
        DataElement::new(
            tags::CODE_VALUE,
            VR::SH,
            PrimitiveValue::from(BASIC_PROFILE_CODE),
        ),
        DataElement::new(
            tags::CODING_SCHEME_DESIGNATOR,
            VR::SH,
            PrimitiveValue::from("DCM"),
        ),
        DataElement::new(
            tags::CODE_MEANING,
            VR::LO,
            PrimitiveValue::from("Basic Application Confidentiality Profile"),
        ),
    ]);
    ds.put(DataElement::new(
        tags::DEIDENTIFICATION_METHOD_CODE_SEQUENCE,
        VR::SQ,
        Value::from(DataSetSequence::new(vec![item], Length::UNDEFINED)),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_object::meta::FileMetaTableBuilder;

    #[test]
    fn hmac_matches_rfc_4231_case_2() {
        let m = hmac_sha256(b"Jefe", &[b"what do ya want ", b"for nothing?"]);
        assert_eq!(
            hex(&m),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn case_ids_are_keyed_and_stable() {
        let a = PseudonymKey::from_bytes(&[1; 32]);
        let b = PseudonymKey::from_bytes(&[2; 32]);
        let study = "1.2.3.4.5";
        assert_eq!(a.case_id(study), a.case_id(study));
        assert_ne!(a.case_id(study), b.case_id(study));
        assert_ne!(a.case_id(study), a.case_id("1.2.3.4.6"));
        let id = a.case_id(study);
        assert_eq!(id.len(), "case-".len() + 12);
        assert!(id.starts_with("case-") && id[5..].chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(format!("{a:?}"), "PseudonymKey(..)");
    }

    #[test]
    fn uid_map_is_one_to_one_and_keeps_dicom_uids() {
        let mut m = UidMap::new(PseudonymKey::from_bytes(b"k"));
        let x = m.map("1.2.3");
        assert_eq!(m.map("1.2.3\0"), x);
        assert_ne!(m.map("1.2.4"), x);
        assert!(x.starts_with("2.25.") && x.len() <= 64);
        assert_eq!(
            m.map("1.2.840.10008.5.1.4.1.1.2"),
            "1.2.840.10008.5.1.4.1.1.2"
        );
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn key_file_is_created_once_and_reread() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("haptwin").join("pseudonym.key");
        let k1 = PseudonymKey::load_or_create(&path).unwrap();
        let k2 = PseudonymKey::load_or_create(&path).unwrap();
        assert_eq!(k1, k2);
        assert_eq!(k1.0.len(), 32);
        std::fs::write(&path, "zz").unwrap();
        assert!(matches!(
            PseudonymKey::load_or_create(&path),
            Err(KeyError::Malformed { .. })
        ));
    }

    #[test]
    fn profile_is_applied_inside_sequences_and_meta() {
        let item = InMemDicomObject::from_element_iter([
            DataElement::new(
                tags::REFERENCED_SOP_INSTANCE_UID,
                VR::UI,
                PrimitiveValue::from("1.9.9.7"),
            ),
            DataElement::new(
                tags::PERSON_NAME,
                VR::PN,
                PrimitiveValue::from("NESTED^NAME"),
            ),
        ]);
        let ds = InMemDicomObject::from_element_iter([
            DataElement::new(
                tags::SOP_CLASS_UID,
                VR::UI,
                PrimitiveValue::from("1.2.840.10008.5.1.4.1.1.2"),
            ),
            DataElement::new(
                tags::SOP_INSTANCE_UID,
                VR::UI,
                PrimitiveValue::from("1.9.9.7"),
            ),
            DataElement::new(
                tags::STUDY_INSTANCE_UID,
                VR::UI,
                PrimitiveValue::from("1.9.9.1"),
            ),
            DataElement::new(tags::PATIENT_NAME, VR::PN, PrimitiveValue::from("DOE^JANE")),
            DataElement::new(
                tags::INSTITUTION_NAME,
                VR::LO,
                PrimitiveValue::from("ST ELSEWHERE"),
            ),
            DataElement::new(Tag(0x0009, 0x0010), VR::LO, PrimitiveValue::from("ACME")),
            DataElement::new(
                tags::REFERENCED_IMAGE_SEQUENCE,
                VR::SQ,
                Value::from(DataSetSequence::new(vec![item], Length::UNDEFINED)),
            ),
        ]);
        let mut obj = ds
            .with_meta(FileMetaTableBuilder::new().transfer_syntax("1.2.840.10008.1.2.1"))
            .unwrap();
        let key = PseudonymKey::from_bytes(b"test");
        let mut d = Deidentifier::new(key.clone());
        let out = d.apply(&mut obj);
        assert_eq!(out.case_id, key.case_id("1.9.9.1"));
        let sop = obj
            .get(tags::SOP_INSTANCE_UID)
            .unwrap()
            .to_str()
            .unwrap()
            .into_owned();
        assert!(sop.starts_with("2.25."));
        assert_eq!(obj.meta().media_storage_sop_instance_uid, sop);
        let seq = obj.get(tags::REFERENCED_IMAGE_SEQUENCE).unwrap();
        let nested = &seq.items().unwrap()[0];
        assert_eq!(
            nested
                .get(tags::REFERENCED_SOP_INSTANCE_UID)
                .unwrap()
                .to_str()
                .unwrap(),
            sop
        );
        assert_eq!(nested.get(tags::PERSON_NAME).unwrap().to_str().unwrap(), "");
        assert!(obj.get(Tag(0x0009, 0x0010)).is_none());
        assert!(obj.get(tags::INSTITUTION_NAME).is_none());
        assert_eq!(
            obj.get(tags::PATIENT_NAME).unwrap().to_str().unwrap(),
            out.case_id
        );
        assert_eq!(
            obj.get(tags::PATIENT_IDENTITY_REMOVED)
                .unwrap()
                .to_str()
                .unwrap(),
            "YES"
        );
        assert_eq!(
            obj.get(tags::SOP_CLASS_UID).unwrap().to_str().unwrap(),
            "1.2.840.10008.5.1.4.1.1.2"
        );
        assert!(out.elements_changed >= 6);
        assert_eq!(d.summary().codes, vec!["113100".to_string()]);
    }
}
