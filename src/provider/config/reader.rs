//! Typed reads of one cty object's attributes, each problem a diagnostic at its path.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;

use crate::cty::{Path, Value};
use crate::tfplugin5::{Diagnostic, Diagnostics};

/// What an unknown value means to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unknowns {
    /// an error: the value must be known (apply time)
    Refuse,
    /// treated as not set, and its path recorded (plan time)
    Tolerate,
}

/// Reads attributes of the object at `at`.
pub(super) struct Reader<'a> {
    obj: &'a Value,
    at: Path,
    policy: Unknowns,
    diags: &'a mut Diagnostics,
    unknown: &'a mut Vec<Path>,
}

impl<'a> Reader<'a> {
    pub(super) fn new(
        obj: &'a Value,
        policy: Unknowns,
        diags: &'a mut Diagnostics,
        unknown: &'a mut Vec<Path>,
    ) -> Reader<'a> {
        Reader {
            obj,
            at: Path::root(),
            policy,
            diags,
            unknown,
        }
    }

    /// The known, non-null value of `name` (unknowns handled per policy).
    fn known(&mut self, name: &str) -> Option<&'a Value> {
        let v = self.obj.get(name)?;
        if v.is_null() {
            return None;
        }
        if !v.is_wholly_known() {
            let path = self.at.join_attr(name);
            match self.policy {
                Unknowns::Tolerate => self.unknown.push(path),
                Unknowns::Refuse => self.diags.push(
                    Diagnostic::error(
                        "Value not known",
                        format!(
                            "{path} is not known yet, but the provider needs it now. Make it \
                             depend only on values known before apply."
                        ),
                    )
                    .at(path.clone()),
                ),
            }
            return None;
        }
        Some(v)
    }

    fn wrong_type(&mut self, name: &str, expected: &str) {
        let path = self.at.join_attr(name);
        self.diags.push(
            Diagnostic::error("Invalid value type", format!("{path} must be {expected}.")).at(path),
        );
    }

    pub(super) fn string(&mut self, name: &str) -> Option<String> {
        let v = self.known(name)?;
        match v.as_str() {
            Some(s) => Some(s.to_string()),
            None => {
                self.wrong_type(name, "a string");
                None
            }
        }
    }

    pub(super) fn bool(&mut self, name: &str) -> Option<bool> {
        let v = self.known(name)?;
        match v.as_bool() {
            Some(b) => Some(b),
            None => {
                self.wrong_type(name, "a bool");
                None
            }
        }
    }

    /// A number greater than zero (fractions allowed).
    pub(super) fn positive_f64(&mut self, name: &str) -> Option<f64> {
        let v = self.known(name)?;
        match v.as_number().and_then(|n| n.as_f64()) {
            Some(f) if f > 0.0 && f.is_finite() => Some(f),
            _ => {
                self.wrong_type(name, "a number greater than 0");
                None
            }
        }
    }

    /// A whole number that fits `u32`.
    pub(super) fn u32(&mut self, name: &str) -> Option<u32> {
        let v = self.known(name)?;
        match v
            .as_number()
            .and_then(|n| n.as_u64())
            .and_then(|n| u32::try_from(n).ok())
        {
            Some(n) => Some(n),
            None => {
                self.wrong_type(name, "a whole number from 0 to 4294967295");
                None
            }
        }
    }

    pub(super) fn strings(&mut self, name: &str) -> Option<Vec<String>> {
        let v = self.known(name)?;
        let (Value::List(items) | Value::Set(items)) = v else {
            self.wrong_type(name, "a list of strings");
            return None;
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            match item.as_str() {
                Some(s) => out.push(s.to_string()),
                None => {
                    let path = self.at.join_attr(name).join_index(i as i64);
                    self.diags.push(
                        Diagnostic::error(
                            "Invalid list element",
                            format!("{path} must be a non-null string."),
                        )
                        .at(path),
                    );
                }
            }
        }
        Some(out)
    }

    pub(super) fn string_map(&mut self, name: &str) -> Option<BTreeMap<String, String>> {
        let v = self.known(name)?;
        let Value::Map(m) = v else {
            self.wrong_type(name, "a map of strings");
            return None;
        };
        let mut out = BTreeMap::new();
        for (k, item) in m {
            match item.as_str() {
                Some(s) => {
                    out.insert(k.clone(), s.to_string());
                }
                None => {
                    let path = self.at.join_attr(name).join_key(k);
                    self.diags.push(
                        Diagnostic::error(
                            "Invalid map element",
                            format!("{path} must be a non-null string."),
                        )
                        .at(path),
                    );
                }
            }
        }
        Some(out)
    }

    /// A string parsed into one of the engine's serde enums (spelling as in the schema).
    pub(super) fn spelling<T: DeserializeOwned>(&mut self, name: &str, allowed: &str) -> Option<T> {
        let s = self.string(name)?;
        parse_spelling(&s).or_else(|| {
            let path = self.at.join_attr(name);
            self.diags.push(
                Diagnostic::error(
                    format!("Invalid value for {path}"),
                    format!("{s:?} is not supported: write {allowed}."),
                )
                .at(path),
            );
            None
        })
    }

    /// Entries of a list attribute parsed into a serde enum, each problem at `name[i]`.
    pub(super) fn spellings<T: DeserializeOwned>(
        &mut self,
        name: &str,
        allowed: &str,
    ) -> Option<Vec<T>> {
        let items = self.strings(name)?;
        let mut out = Vec::with_capacity(items.len());
        for (i, s) in items.iter().enumerate() {
            match parse_spelling(s) {
                Some(t) => out.push(t),
                None => {
                    let path = self.at.join_attr(name).join_index(i as i64);
                    self.diags.push(
                        Diagnostic::error(
                            format!("Invalid value for {path}"),
                            format!("{s:?} is not supported: write {allowed}."),
                        )
                        .at(path),
                    );
                }
            }
        }
        Some(out)
    }

    /// The nested single block `name`, when present (a null block is `None`).
    pub(super) fn block<R>(
        &mut self,
        name: &str,
        read: impl FnOnce(&mut Reader<'_>) -> R,
    ) -> Option<R> {
        let v = self.known_block(name)?;
        let mut inner = Reader {
            obj: v,
            at: self.at.join_attr(name),
            policy: self.policy,
            diags: self.diags,
            unknown: self.unknown,
        };
        Some(read(&mut inner))
    }

    fn known_block(&mut self, name: &str) -> Option<&'a Value> {
        let v = self.obj.get(name)?;
        if v.is_null() {
            return None;
        }
        if v.is_unknown() {
            // a wholly unknown block: handled like an unknown attribute
            return self.known(name);
        }
        Some(v)
    }
}

fn parse_spelling<T: DeserializeOwned>(s: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(s.to_string())).ok()
}
