//! The cty codecs: msgpack and JSON values driven by a type, type JSON and lossless numbers.
//!
//! Byte-exact expectations are written by hand from the msgpack specification (markers: fixmap
//! 0x80|n, fixarray 0x90|n, fixstr 0xa0|n, nil c0, false c2, true c3, bin8 c4, float64 cb, uint8..64
//! cc..cf, int8..64 d0..d3, fixext1 d4, str8 d9) and go-cty's documented layout (objects with every
//! attribute in sorted order, unknown = d4 00 00, dynamic = [type JSON as bin, value]).

use std::collections::BTreeMap;

use hyops::cty::json::{decode_json, encode_json};
use hyops::cty::msgpack::{decode, encode, MAX_DEPTH};
use hyops::cty::{CtyError, Number, Path, PathStep, Type, Value};
use proptest::prelude::*;

fn num(s: &str) -> Value {
    Value::Number(Number::parse(s).unwrap())
}

fn s(v: &str) -> Value {
    Value::string(v)
}

fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn unhex(h: &str) -> Vec<u8> {
    h.split_whitespace()
        .map(|x| u8::from_str_radix(x, 16).unwrap())
        .collect()
}

/// msgpack str header + bytes, for hand-built expectations.
fn mp_str(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let n = text.len();
    if n < 32 {
        out.push(0xa0 | n as u8);
    } else {
        assert!(n < 256);
        out.extend([0xd9, n as u8]);
    }
    out.extend(text.as_bytes());
    out
}

fn round_trip(v: &Value, ty: &Type) -> Value {
    let bytes = encode(v, ty).unwrap_or_else(|e| panic!("encode {v:?} as {ty:?}: {e}"));
    decode(&bytes, ty).unwrap_or_else(|e| panic!("decode {} as {ty:?}: {e}", hex(&bytes)))
}

fn build_type() -> Type {
    Type::object([
        ("method", Type::String),
        ("disk_size_gb", Type::Number),
        ("cloud_init", Type::Bool),
        ("datasources", Type::list(Type::String)),
        ("environment", Type::map(Type::String)),
    ])
}

fn resource_type() -> Type {
    Type::object([
        ("artifact_key", Type::String),
        ("additional_formats", Type::set(Type::String)),
        ("build", build_type()),
        (
            "artifacts",
            Type::map(Type::object([("sha256", Type::String)])),
        ),
        ("pair", Type::Tuple(vec![Type::String, Type::Number])),
        ("extra", Type::Dynamic),
    ])
}

// ---------------------------------------------------------------- byte-exact msgpack

#[test]
fn object_with_missing_attributes_writes_every_key_sorted_with_nil() {
    let ty = Type::object([("c", Type::Bool), ("a", Type::String), ("b", Type::Number)]);
    let v = Value::object([("a", s("x"))]);
    let bytes = encode(&v, &ty).unwrap();
    assert_eq!(hex(&bytes), "83 a1 61 a1 78 a1 62 c0 a1 63 c0");
    // decoded back, the missing ones are explicit nulls
    assert_eq!(
        decode(&bytes, &ty).unwrap(),
        Value::object([("a", s("x")), ("b", Value::Null), ("c", Value::Null)])
    );
}

#[test]
fn unknown_is_written_only_as_fixext1_zero() {
    for ty in [
        Type::String,
        Type::Number,
        Type::list(Type::Bool),
        build_type(),
        Type::Dynamic,
    ] {
        assert_eq!(
            encode(&Value::Unknown, &ty).unwrap(),
            vec![0xd4, 0, 0],
            "{ty:?}"
        );
    }
    let ty = Type::list(Type::String);
    let v = Value::List(vec![s("a"), Value::Unknown]);
    assert_eq!(hex(&encode(&v, &ty).unwrap()), "92 a1 61 d4 00 00");
}

#[test]
fn null_collections_and_empty_collections_differ() {
    let ty = Type::object([
        ("l", Type::list(Type::String)),
        ("m", Type::map(Type::Number)),
        ("s", Type::set(Type::Bool)),
    ]);
    let v = Value::object([
        ("l", Value::List(vec![])),
        ("m", Value::Null),
        ("s", Value::Set(vec![])),
    ]);
    let bytes = encode(&v, &ty).unwrap();
    assert_eq!(hex(&bytes), "83 a1 6c 90 a1 6d c0 a1 73 90");
    assert_eq!(decode(&bytes, &ty).unwrap(), v);
}

#[test]
fn map_entries_are_written_in_sorted_key_order() {
    let ty = Type::map(Type::Number);
    let v = Value::map([("zz", Value::number(1i64)), ("a", Value::number(-1i64))]);
    assert_eq!(hex(&encode(&v, &ty).unwrap()), "82 a1 61 ff a2 7a 7a 01");
}

#[test]
fn dynamic_value_is_type_json_as_bin_then_value() {
    let v = Value::Dynamic(Type::String, Box::new(s("hi")));
    let bytes = encode(&v, &Type::Dynamic).unwrap();
    let mut want = vec![0x92, 0xc4, 8];
    want.extend(b"\"string\"");
    want.extend([0xa2, b'h', b'i']);
    assert_eq!(hex(&bytes), hex(&want));
    assert_eq!(decode(&bytes, &Type::Dynamic).unwrap(), v);

    // the type JSON may also arrive as str
    let mut as_str = vec![0x92, 0xa8];
    as_str.extend(b"\"string\"");
    as_str.extend([0xa2, b'h', b'i']);
    assert_eq!(decode(&as_str, &Type::Dynamic).unwrap(), v);

    // an object inside a dynamic value
    let oty = Type::object([("n", Type::Number)]);
    let v = Value::Dynamic(
        oty.clone(),
        Box::new(Value::object([("n", Value::number(5i64))])),
    );
    let bytes = encode(&v, &Type::Dynamic).unwrap();
    let tj = br#"["object",{"n":"number"}]"#;
    let mut want = vec![0x92, 0xc4, tj.len() as u8];
    want.extend(tj);
    want.extend([0x81, 0xa1, b'n', 0x05]);
    assert_eq!(hex(&bytes), hex(&want));
    assert_eq!(decode(&bytes, &Type::Dynamic).unwrap(), v);
}

#[test]
fn unknown_and_null_dynamic_are_plain_ext_and_nil() {
    assert_eq!(
        encode(&Value::Unknown, &Type::Dynamic).unwrap(),
        unhex("d4 00 00")
    );
    assert_eq!(encode(&Value::Null, &Type::Dynamic).unwrap(), unhex("c0"));
    assert_eq!(
        decode(&unhex("d4 00 00"), &Type::Dynamic).unwrap(),
        Value::Unknown
    );
    assert_eq!(decode(&unhex("c0"), &Type::Dynamic).unwrap(), Value::Null);
    // an unknown of a known type inside a dynamic slot keeps its type
    let v = Value::Dynamic(Type::Number, Box::new(Value::Unknown));
    let bytes = encode(&v, &Type::Dynamic).unwrap();
    let mut want = vec![0x92, 0xc4, 8];
    want.extend(b"\"number\"");
    want.extend([0xd4, 0, 0]);
    assert_eq!(bytes, want);
    assert_eq!(decode(&bytes, &Type::Dynamic).unwrap(), v);
}

#[test]
fn integers_are_written_in_the_smallest_width() {
    let cases: &[(&str, &str)] = &[
        ("0", "00"),
        ("127", "7f"),
        ("128", "cc 80"),
        ("255", "cc ff"),
        ("256", "cd 01 00"),
        ("65535", "cd ff ff"),
        ("65536", "ce 00 01 00 00"),
        ("4294967296", "cf 00 00 00 01 00 00 00 00"),
        ("18446744073709551615", "cf ff ff ff ff ff ff ff ff"),
        ("9007199254740993", "cf 00 20 00 00 00 00 00 01"),
        ("-1", "ff"),
        ("-32", "e0"),
        ("-33", "d0 df"),
        ("-128", "d0 80"),
        ("-129", "d1 ff 7f"),
        ("-32769", "d2 ff ff 7f ff"),
        ("-2147483649", "d3 ff ff ff ff 7f ff ff ff"),
        ("-9223372036854775808", "d3 80 00 00 00 00 00 00 00"),
        ("1e2", "64"),
    ];
    for (n, want) in cases {
        assert_eq!(
            hex(&encode(&num(n), &Type::Number).unwrap()),
            *want,
            "number {n}"
        );
    }
}

#[test]
fn non_integers_are_float64_when_exact_else_decimal_strings() {
    // 0.5 is exactly a binary float
    assert_eq!(
        hex(&encode(&num("0.5"), &Type::Number).unwrap()),
        "cb 3f e0 00 00 00 00 00 00"
    );
    // 2^64 is an integer beyond u64 but exactly a float64
    assert_eq!(
        hex(&encode(&num("18446744073709551616"), &Type::Number).unwrap()),
        "cb 43 f0 00 00 00 00 00 00"
    );
    // everything else is the canonical decimal text as a msgpack string
    for text in [
        "0.1",
        "1e400",
        "-1e-400",
        "18446744073709551617",
        "3.14159265358979323846264338327950288",
    ] {
        assert_eq!(
            encode(&num(text), &Type::Number).unwrap(),
            mp_str(text),
            "{text}"
        );
    }
}

// ---------------------------------------------------------------- numbers in

#[test]
fn every_msgpack_int_width_decodes() {
    let cases: &[(&str, &str)] = &[
        ("05", "5"),
        ("7f", "127"),
        ("ff", "-1"),
        ("e0", "-32"),
        ("cc ff", "255"),
        ("cc 05", "5"),
        ("cd ff ff", "65535"),
        ("ce ff ff ff ff", "4294967295"),
        ("cf ff ff ff ff ff ff ff ff", "18446744073709551615"),
        ("d0 80", "-128"),
        ("d0 7f", "127"),
        ("d1 80 00", "-32768"),
        ("d2 80 00 00 00", "-2147483648"),
        ("d3 80 00 00 00 00 00 00 00", "-9223372036854775808"),
        ("d3 7f ff ff ff ff ff ff ff", "9223372036854775807"),
    ];
    for (bytes, want) in cases {
        let v = decode(&unhex(bytes), &Type::Number).unwrap();
        assert_eq!(v.as_number().unwrap().as_str(), *want, "bytes {bytes}");
    }
}

#[test]
fn floats_decode_to_their_exact_value_and_reencode_identically() {
    // float32 1.5 and float32 0.1 (0x3dcccccd)
    let v = decode(&unhex("ca 3f c0 00 00"), &Type::Number).unwrap();
    assert_eq!(v, num("1.5"));
    let v = decode(&unhex("ca 3d cc cc cd"), &Type::Number).unwrap();
    assert_eq!(v, num("0.100000001490116119384765625"));
    // float64 0.1 is not the decimal 0.1: it keeps the binary value and goes out as the same float
    let f01 = unhex("cb 3f b9 99 99 99 99 99 9a");
    let v = decode(&f01, &Type::Number).unwrap();
    assert_eq!(
        v,
        num("0.1000000000000000055511151231257827021181583404541015625")
    );
    assert_ne!(v, num("0.1"));
    assert_eq!(encode(&v, &Type::Number).unwrap(), f01);
    // integral float64 reads as an integer and goes out as the smallest int
    let v = decode(&unhex("cb 40 59 00 00 00 00 00 00"), &Type::Number).unwrap();
    assert_eq!(v, num("100"));
    assert_eq!(encode(&v, &Type::Number).unwrap(), unhex("64"));
}

#[test]
fn non_finite_floats_are_refused() {
    for bytes in [
        "cb 7f f8 00 00 00 00 00 00",
        "cb 7f f0 00 00 00 00 00 00",
        "cb ff f0 00 00 00 00 00 00",
        "ca 7f c0 00 00",
    ] {
        let e = decode(&unhex(bytes), &Type::Number).unwrap_err();
        assert!(e.to_string().contains("finite"), "{bytes}: {e}");
    }
}

#[test]
fn decimal_strings_decode_as_numbers_from_str_or_bin() {
    for text in [
        "1e400",
        "18446744073709551617",
        "-1e-400",
        "0.1",
        "1E2",
        "+5",
    ] {
        let canonical = Number::parse(text).unwrap();
        let mut bin = vec![0xc4, text.len() as u8];
        bin.extend(text.as_bytes());
        for bytes in [mp_str(text), bin] {
            let v = decode(&bytes, &Type::Number).unwrap();
            assert_eq!(v.as_number(), Some(&canonical), "{}", hex(&bytes));
        }
    }
    let e = decode(&mp_str("12abc"), &Type::Number).unwrap_err();
    assert!(e.to_string().contains("a number is required"), "{e}");
}

#[test]
fn edge_numbers_round_trip_exactly() {
    let edges = [
        Number::from_u64(u64::MAX),
        Number::from_i64(i64::MIN),
        Number::from_i64(i64::MAX),
        Number::parse("9007199254740993").unwrap(),
        Number::parse("1e400").unwrap(),
        Number::parse("-1e-400").unwrap(),
        Number::parse("0.1").unwrap(),
        Number::parse("3.14159265358979323846264338327950288").unwrap(),
        Number::parse("18446744073709551617").unwrap(),
        Number::parse("-18446744073709551617").unwrap(),
        Number::from_f64(f64::MIN_POSITIVE).unwrap(),
        Number::from_f64(f64::MAX).unwrap(),
        Number::from_f64(5e-324).unwrap(),
        Number::parse("0").unwrap(),
    ];
    for n in edges {
        let v = Value::Number(n.clone());
        assert_eq!(round_trip(&v, &Type::Number), v, "msgpack {n}");
        let j = encode_json(&v, &Type::Number).unwrap();
        let back = decode_json(j.to_string().as_bytes(), &Type::Number).unwrap();
        assert_eq!(back, v, "json {n}");
    }
    assert_eq!(Number::from_u64(u64::MAX).as_u64(), Some(u64::MAX));
    assert_eq!(Number::from_i64(i64::MIN).as_i64(), Some(i64::MIN));
}

#[test]
fn canonical_number_text() {
    for (input, want) in [
        ("1e2", "100"),
        ("100.000", "100"),
        ("0.10", "0.1"),
        ("-0", "0"),
        ("1e400", "1e400"),
        ("1.000e-400", "1e-400"),
        ("12.5e-1", "1.25"),
        ("0.00001", "0.00001"),
        ("0.0000001", "1e-7"),
        ("123456789012345678901", "123456789012345678901"),
        ("1234567890123456789012", "1.234567890123456789012e21"),
    ] {
        assert_eq!(Number::parse(input).unwrap().as_str(), want, "{input}");
    }
    // equal values are equal numbers, whatever their spelling
    assert_eq!(Number::parse("1e2").unwrap(), Number::from_i64(100));
    assert_eq!(
        Number::from_f64(0.5).unwrap(),
        Number::parse("5e-1").unwrap()
    );
}

// ---------------------------------------------------------------- unknowns in

#[test]
fn any_ext_type_and_length_decodes_as_unknown() {
    let exts = [
        "d4 00 00",
        "d4 05 ff",
        "d5 00 00 00",
        "d6 ff 01 02 03 04",
        "d7 01 01 02 03 04 05 06 07 08",
        "d8 7f 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f",
        "c7 00 00",
        // Terraform's refined unknown: ext type 12 carrying a msgpack map of refinements
        "c7 03 0c 81 01 c3",
        "c8 00 02 80 aa bb",
        "c9 00 00 00 01 07 aa",
    ];
    let types = [
        Type::String,
        Type::Number,
        Type::Bool,
        Type::list(Type::String),
        Type::map(Type::Number),
        build_type(),
        Type::Tuple(vec![Type::Bool]),
        Type::Dynamic,
    ];
    for ext in exts {
        for ty in &types {
            assert_eq!(
                decode(&unhex(ext), ty).unwrap(),
                Value::Unknown,
                "{ext} as {ty:?}"
            );
        }
        // inside an object, followed by another attribute: the whole ext must be skipped
        let ty = Type::object([("a", Type::String), ("b", Type::Number)]);
        let mut bytes = unhex("82 a1 61");
        bytes.extend(unhex(ext));
        bytes.extend(unhex("a1 62 07"));
        assert_eq!(
            decode(&bytes, &ty).unwrap(),
            Value::object([("a", Value::Unknown), ("b", Value::number(7i64))]),
            "{ext} inside an object"
        );
    }
}

#[test]
fn unknowns_at_every_depth_round_trip() {
    let ty = resource_type();
    let v = Value::object([
        ("artifact_key", Value::Unknown),
        (
            "additional_formats",
            Value::Set(vec![s("raw.xz"), Value::Unknown]),
        ),
        (
            "build",
            Value::object([
                ("method", s("packer")),
                ("disk_size_gb", Value::Unknown),
                ("cloud_init", Value::Bool(true)),
                (
                    "datasources",
                    Value::List(vec![Value::Unknown, s("NoCloud")]),
                ),
                (
                    "environment",
                    Value::map([("A", Value::Unknown), ("B", s("b"))]),
                ),
            ]),
        ),
        (
            "artifacts",
            Value::map([("k", Value::object([("sha256", Value::Unknown)]))]),
        ),
        (
            "pair",
            Value::List(vec![Value::Unknown, Value::number(1i64)]),
        ),
        (
            "extra",
            Value::Dynamic(
                Type::list(Type::String),
                Box::new(Value::List(vec![Value::Unknown])),
            ),
        ),
    ]);
    assert_eq!(round_trip(&v, &ty), v);
    assert!(!v.is_wholly_known());
    // whole attributes unknown, and the whole value unknown
    let v = Value::unknown_like(&ty);
    assert_eq!(round_trip(&v, &ty), v);
    assert_eq!(round_trip(&Value::Unknown, &ty), Value::Unknown);
}

#[test]
fn nulls_everywhere_round_trip() {
    let ty = resource_type();
    let v = Value::null_object(&ty);
    assert_eq!(round_trip(&v, &ty), v);
    let v = Value::object([
        ("additional_formats", Value::Set(vec![Value::Null])),
        (
            "build",
            Value::object([
                ("datasources", Value::List(vec![Value::Null])),
                ("environment", Value::map([("A", Value::Null)])),
            ]),
        ),
        ("pair", Value::List(vec![Value::Null, Value::Null])),
        ("extra", Value::Dynamic(Type::Bool, Box::new(Value::Null))),
    ]);
    let got = round_trip(&v, &ty);
    assert_eq!(
        got.get_path(&Path(vec![
            PathStep::Attribute("build".into()),
            PathStep::Attribute("environment".into()),
            PathStep::Key("A".into()),
        ])),
        Some(&Value::Null)
    );
    assert_eq!(got.get("artifact_key"), Some(&Value::Null));
    assert_eq!(got.get("extra"), v.get("extra"));
    assert_eq!(round_trip(&Value::Null, &ty), Value::Null);
}

#[test]
fn every_type_kind_round_trips() {
    let cases: Vec<(Type, Value)> = vec![
        (Type::String, s("")),
        (Type::String, s("ünïcødé \u{1F680} \"quoted\"")),
        (Type::String, s(&"x".repeat(70_000))),
        (Type::Number, num("42")),
        (Type::Bool, Value::Bool(false)),
        (
            Type::list(Type::Number),
            Value::List((0..20).map(|i| Value::number(i as i64)).collect()),
        ),
        (Type::set(Type::String), Value::Set(vec![s("b"), s("a")])),
        (
            Type::map(Type::Bool),
            Value::map([("x", Value::Bool(true)), ("", Value::Bool(false))]),
        ),
        (
            Type::object([("only", Type::String)]),
            Value::object([("only", s("v"))]),
        ),
        (
            Type::Object(BTreeMap::new()),
            Value::Object(BTreeMap::new()),
        ),
        (
            Type::Tuple(vec![Type::String, Type::Bool, Type::Number]),
            Value::List(vec![s("a"), Value::Bool(true), num("1e400")]),
        ),
        (Type::Tuple(vec![]), Value::List(vec![])),
        (
            Type::Dynamic,
            Value::Dynamic(Type::Number, Box::new(num("0.1"))),
        ),
        (
            Type::list(Type::map(Type::set(Type::Tuple(vec![Type::Dynamic])))),
            Value::List(vec![Value::map([(
                "k",
                Value::Set(vec![Value::List(vec![Value::Dynamic(
                    Type::object([("deep", Type::list(Type::Number))]),
                    Box::new(Value::object([("deep", Value::List(vec![num("-1e-400")]))])),
                )])]),
            )])]),
        ),
    ];
    for (ty, v) in cases {
        assert_eq!(round_trip(&v, &ty), v, "{ty:?}");
        let j = encode_json(&v, &ty).unwrap();
        assert_eq!(
            decode_json(j.to_string().as_bytes(), &ty).unwrap(),
            v,
            "json {ty:?}"
        );
    }
}

// ---------------------------------------------------------------- errors

#[test]
fn unsupported_attribute_is_an_error_naming_it() {
    let ty = Type::object([("a", Type::String)]);
    let bytes = unhex("82 a1 61 a1 78 a5 65 78 74 72 61 c0"); // {"a":"x","extra":nil}
    let e = decode(&bytes, &ty).unwrap_err();
    assert!(matches!(e, CtyError::Decode { .. }));
    assert!(e.to_string().contains("\"extra\""), "{e}");

    let e = encode(&Value::object([("b", s("x"))]), &ty).unwrap_err();
    assert!(e.to_string().contains("\"b\""), "{e}");
}

#[test]
fn decode_errors_carry_the_attribute_path() {
    let ty = Type::object([("build", build_type())]);
    // {"build": {"method": 5}}
    let bytes = unhex("81 a5 62 75 69 6c 64 81 a6 6d 65 74 68 6f 64 05");
    let e = decode(&bytes, &ty).unwrap_err();
    assert_eq!(
        e.path(),
        Some(&Path(vec![
            PathStep::Attribute("build".into()),
            PathStep::Attribute("method".into())
        ]))
    );
    assert!(e.to_string().contains("build.method"), "{e}");
    assert!(e.to_string().contains("a string is required"), "{e}");

    // ["a", true] as list(string): element 1
    let e = decode(&unhex("92 a1 61 c3"), &Type::list(Type::String)).unwrap_err();
    assert_eq!(e.path(), Some(&Path(vec![PathStep::Index(1)])));

    // {"k": "x"} as map(number)
    let e = decode(&unhex("81 a1 6b a1 78"), &Type::map(Type::Number)).unwrap_err();
    assert_eq!(e.path(), Some(&Path(vec![PathStep::Key("k".into())])));

    // the JSON decoder too
    let e = decode_json(br#"{"build":{"datasources":["a",{}]}}"#, &ty).unwrap_err();
    assert_eq!(
        e.to_string(),
        "cannot decode value at build.datasources[1]: a string is required, found an object"
    );
}

#[test]
fn malformed_input_is_an_error() {
    let cases: &[(&str, Type)] = &[
        ("", Type::String),
        ("a5 61", Type::String),                          // truncated str
        ("cd 01", Type::Number),                          // truncated uint16
        ("dd ff ff ff ff", Type::list(Type::Bool)),       // array32 claiming 4G items
        ("df ff ff ff ff", Type::map(Type::Bool)),        // map32 claiming 4G entries
        ("c9 ff ff ff ff 00", Type::String),              // ext32 claiming 4 GiB
        ("c1", Type::Bool),                               // reserved marker
        ("a1 ff", Type::String),                          // invalid UTF-8
        ("05 05", Type::Number),                          // trailing bytes
        ("93 01 02 03", Type::Tuple(vec![Type::Number])), // wrong tuple length
        ("91 a8 22 73 74 72 69 6e 67 22", Type::Dynamic), // dynamic with one element
        ("92 a3 22 78 22 01", Type::Dynamic),             // unknown type name
        ("82 a1 61 01 a1 61 02", Type::object([("a", Type::Number)])), // duplicate attribute
        ("81 01 02", Type::map(Type::Number)),            // non-string key
    ];
    for (bytes, ty) in cases {
        assert!(
            decode(&unhex(bytes), ty).is_err(),
            "{bytes} as {ty:?} was accepted"
        );
    }
}

#[test]
fn nesting_is_bounded_not_a_stack_overflow() {
    // a type nested past the limit, with matching bytes
    let mut ty = Type::Bool;
    for _ in 0..(MAX_DEPTH + 6) {
        ty = Type::list(ty);
    }
    let mut bytes = vec![0x91; MAX_DEPTH + 6];
    bytes.push(0xc3);
    let e = decode(&bytes, &ty).unwrap_err();
    assert!(e.to_string().contains("nested deeper"), "{e}");
    let mut v = Value::Bool(true);
    for _ in 0..(MAX_DEPTH + 6) {
        v = Value::List(vec![v]);
    }
    assert!(encode(&v, &ty).is_err());
    assert!(encode_json(&v, &ty).is_err());

    // dynamic values nesting themselves through type JSON "dynamic" from the wire
    let mut bytes = Vec::new();
    for _ in 0..10_000 {
        bytes.extend([0x92, 0xa9]);
        bytes.extend(b"\"dynamic\"");
    }
    bytes.push(0xc0);
    assert!(decode(&bytes, &Type::Dynamic).is_err());

    // deep type JSON
    let deep = format!("{}\"string\"{}", "[\"list\",".repeat(200), "]".repeat(200));
    assert!(Type::from_json(deep.as_bytes()).is_err());
}

#[test]
fn encode_refuses_values_that_do_not_fit_the_type() {
    assert!(encode(&s("x"), &Type::Number).is_err());
    assert!(encode(&Value::List(vec![num("1")]), &Type::Tuple(vec![])).is_err());
    assert!(encode(&s("untyped"), &Type::Dynamic).is_err());
    assert!(encode_json(&Value::Unknown, &Type::String).is_err());
    let e = encode(
        &Value::object([("build", Value::object([("cloud_init", s("yes"))]))]),
        &Type::object([("build", build_type())]),
    )
    .unwrap_err();
    assert_eq!(e.path().unwrap().to_string(), "build.cloud_init");
}

// ---------------------------------------------------------------- JSON state

#[test]
fn json_state_keeps_big_numbers_exact() {
    let ty = Type::object([
        ("a", Type::Number),
        ("b", Type::Number),
        ("c", Type::Number),
        ("d", Type::Number),
        ("e", Type::Number),
        ("missing", Type::String),
    ]);
    let raw = br#"{"a": 18446744073709551617, "b": 1e400, "c": 0.1,
                   "d": 3.14159265358979323846264338327950288, "e": -1E-400}"#;
    let v = decode_json(raw, &ty).unwrap();
    assert_eq!(
        v,
        Value::object([
            ("a", num("18446744073709551617")),
            ("b", num("1e400")),
            ("c", num("0.1")),
            ("d", num("3.14159265358979323846264338327950288")),
            ("e", num("-1e-400")),
            ("missing", Value::Null),
        ])
    );
    // UpgradeResourceState: JSON in, msgpack out, nothing lost
    assert_eq!(round_trip(&v, &ty), v);
    let out = encode_json(&v, &ty).unwrap().to_string();
    assert_eq!(
        out,
        r#"{"a":18446744073709551617,"b":1e+400,"c":0.1,"d":3.14159265358979323846264338327950288,"e":-1e-400,"missing":null}"#
    );
}

#[test]
fn json_state_rejects_unknown_attributes_and_converts_like_cty() {
    let ty = Type::object([("s", Type::String), ("n", Type::Number), ("b", Type::Bool)]);
    let e = decode_json(br#"{"s":"x","gone":1}"#, &ty).unwrap_err();
    assert!(e.to_string().contains("\"gone\""), "{e}");
    let v = decode_json(br#"{"s": 12.50, "n": "7", "b": "true"}"#, &ty).unwrap();
    assert_eq!(
        v,
        Value::object([("s", s("12.50")), ("n", num("7")), ("b", Value::Bool(true))])
    );
    assert!(decode_json(br#"{"n": "seven"}"#, &ty).is_err());
    assert!(decode_json(b"{", &ty).is_err());
}

#[test]
fn json_dynamic_is_value_and_type() {
    let v = Value::Dynamic(
        Type::list(Type::Number),
        Box::new(Value::List(vec![num("1e400")])),
    );
    let j = encode_json(&v, &Type::Dynamic).unwrap();
    assert_eq!(
        j.to_string(),
        r#"{"value":[1e+400],"type":["list","number"]}"#
    );
    assert_eq!(
        decode_json(
            br#"{"type":["list","number"],"value":[1e400]}"#,
            &Type::Dynamic
        )
        .unwrap(),
        v
    );
    assert!(decode_json(br#"{"value":1}"#, &Type::Dynamic).is_err());
    assert!(decode_json(br#"{"value":1,"type":"number","x":1}"#, &Type::Dynamic).is_err());
}

// ---------------------------------------------------------------- type JSON

#[test]
fn type_json_matches_terraform() {
    let cases: Vec<(Type, &str)> = vec![
        (Type::String, r#""string""#),
        (Type::Number, r#""number""#),
        (Type::Bool, r#""bool""#),
        (Type::Dynamic, r#""dynamic""#),
        (Type::list(Type::String), r#"["list","string"]"#),
        (Type::set(Type::Number), r#"["set","number"]"#),
        (
            Type::map(Type::list(Type::Bool)),
            r#"["map",["list","bool"]]"#,
        ),
        (
            Type::object([("b", Type::String), ("a", Type::map(Type::String))]),
            r#"["object",{"a":["map","string"],"b":"string"}]"#,
        ),
        (
            Type::Tuple(vec![Type::String, Type::Dynamic]),
            r#"["tuple",["string","dynamic"]]"#,
        ),
        (Type::Tuple(vec![]), r#"["tuple",[]]"#),
        (Type::Object(BTreeMap::new()), r#"["object",{}]"#),
    ];
    for (ty, json) in cases {
        assert_eq!(String::from_utf8(ty.to_json_bytes()).unwrap(), json);
        assert_eq!(Type::from_json(json.as_bytes()).unwrap(), ty);
    }
    // whitespace and the optional-attributes form of type constraints are accepted
    assert_eq!(
        Type::from_json(br#" [ "object" , { "a" : "string" } , [ "a" ] ] "#).unwrap(),
        Type::object([("a", Type::String)])
    );
    for bad in [
        r#""str""#,
        r#"["list"]"#,
        r#"["list","string","x"]"#,
        r#"["object",["a"]]"#,
        r#"["object",{"a":"string"},["b"]]"#,
        r#"["tuple","string"]"#,
        r#"["blob","string"]"#,
        "42",
        "",
    ] {
        assert!(Type::from_json(bad.as_bytes()).is_err(), "accepted {bad}");
    }
}

// ---------------------------------------------------------------- helpers

#[test]
fn walk_and_map_leaves_see_paths() {
    let ty = Type::object([("secret", Type::String), ("tags", Type::map(Type::String))]);
    let v = Value::object([
        ("secret", s("hunter2")),
        ("tags", Value::map([("a", s("1")), ("b", Value::Unknown)])),
    ]);
    let mut seen = Vec::new();
    v.walk(&mut |p, _| seen.push(p.to_string()));
    assert_eq!(seen, ["", "secret", "tags", "tags[\"a\"]", "tags[\"b\"]"]);

    let nulled = v.clone().map_leaves(&mut |p, leaf| {
        if *p == Path::attr("secret") {
            Value::Null
        } else {
            leaf
        }
    });
    assert_eq!(nulled.get("secret"), Some(&Value::Null));
    assert_eq!(nulled.get("tags"), v.get("tags"));
    assert_eq!(round_trip(&nulled, &ty), nulled);
}

// ---------------------------------------------------------------- properties

fn arb_type() -> impl Strategy<Value = Type> {
    let leaf = prop_oneof![
        Just(Type::String),
        Just(Type::Number),
        Just(Type::Bool),
        Just(Type::Dynamic),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            inner.clone().prop_map(Type::list),
            inner.clone().prop_map(Type::set),
            inner.clone().prop_map(Type::map),
            prop::collection::btree_map("[a-z_]{1,6}", inner.clone(), 0..4).prop_map(Type::Object),
            prop::collection::vec(inner, 0..3).prop_map(Type::Tuple),
        ]
    })
}

fn arb_number() -> impl Strategy<Value = Number> {
    prop_oneof![
        any::<i64>().prop_map(Number::from_i64),
        any::<u64>().prop_map(Number::from_u64),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| Number::from_f64(f).unwrap()),
        (any::<bool>(), "[1-9][0-9]{0,40}", -500i64..500).prop_map(|(neg, digits, exp)| {
            let sign = if neg { "-" } else { "" };
            Number::parse(&format!("{sign}{digits}e{exp}")).unwrap()
        }),
    ]
}

/// A value of type `ty`; `unknowns` allows unknowns (msgpack) or not (JSON).
fn arb_value(ty: Type, unknowns: bool) -> BoxedStrategy<Value> {
    let known: BoxedStrategy<Value> = match ty {
        Type::String => "\\PC{0,12}".prop_map(Value::String).boxed(),
        Type::Number => arb_number().prop_map(Value::Number).boxed(),
        Type::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
        Type::List(e) => prop::collection::vec(arb_value(*e, unknowns), 0..4)
            .prop_map(Value::List)
            .boxed(),
        Type::Set(e) => prop::collection::vec(arb_value(*e, unknowns), 0..4)
            .prop_map(Value::Set)
            .boxed(),
        Type::Map(e) => prop::collection::btree_map("\\PC{0,5}", arb_value(*e, unknowns), 0..4)
            .prop_map(Value::Map)
            .boxed(),
        Type::Object(attrs) => {
            let parts: Vec<BoxedStrategy<(String, Value)>> = attrs
                .into_iter()
                .map(|(k, t)| {
                    arb_value(t, unknowns)
                        .prop_map(move |v| (k.clone(), v))
                        .boxed()
                })
                .collect();
            parts
                .prop_map(|kv| Value::Object(kv.into_iter().collect()))
                .boxed()
        }
        Type::Tuple(types) => {
            let parts: Vec<BoxedStrategy<Value>> =
                types.into_iter().map(|t| arb_value(t, unknowns)).collect();
            parts.prop_map(Value::List).boxed()
        }
        Type::Dynamic => arb_type()
            .prop_filter("concrete", |t| *t != Type::Dynamic)
            .prop_flat_map(move |t| {
                arb_value(t.clone(), unknowns)
                    .prop_map(move |v| Value::Dynamic(t.clone(), Box::new(v)))
            })
            .boxed(),
    };
    if unknowns {
        prop_oneof![1 => Just(Value::Null), 1 => Just(Value::Unknown), 6 => known].boxed()
    } else {
        prop_oneof![1 => Just(Value::Null), 6 => known].boxed()
    }
}

fn typed_value(unknowns: bool) -> impl Strategy<Value = (Type, Value)> {
    arb_type().prop_flat_map(move |t| (Just(t.clone()), arb_value(t, unknowns)))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        for ty in [
            Type::String,
            Type::Number,
            Type::Bool,
            Type::Dynamic,
            Type::list(Type::String),
            Type::map(Type::list(Type::Number)),
            resource_type(),
            Type::Tuple(vec![Type::Dynamic, Type::set(Type::Bool)]),
        ] {
            let _ = decode(&bytes, &ty);
            let _ = decode_json(&bytes, &ty);
        }
        let _ = Type::from_json(&bytes);
    }

    #[test]
    fn mutated_valid_encodings_never_panic(
        (ty, v) in typed_value(true),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = encode(&v, &ty).unwrap();
        for (i, b) in flips {
            if !bytes.is_empty() {
                let at = i.index(bytes.len());
                bytes[at] = b;
            }
        }
        let _ = decode(&bytes, &ty);
    }

    #[test]
    fn typed_values_round_trip_through_msgpack((ty, v) in typed_value(true)) {
        let bytes = encode(&v, &ty).unwrap();
        let back = decode(&bytes, &ty).unwrap();
        prop_assert_eq!(&back, &v);
        // and the encoding is stable
        prop_assert_eq!(encode(&back, &ty).unwrap(), bytes);
    }

    #[test]
    fn known_values_round_trip_through_json((ty, v) in typed_value(false)) {
        let j = encode_json(&v, &ty).unwrap();
        let back = decode_json(j.to_string().as_bytes(), &ty).unwrap();
        prop_assert_eq!(&back, &v);
    }

    #[test]
    fn number_text_is_canonical(n in arb_number()) {
        let again = Number::parse(n.as_str()).unwrap();
        prop_assert_eq!(again.as_str(), n.as_str());
    }
}

// ---------------------------------------------------------------- tfplugin5 DynamicValue

mod dynamic_value {
    use super::*;
    use hyops::tfplugin5::pb;
    use hyops::tfplugin5::{
        cty_error_diagnostic, decode_dynamic, decode_dynamic_opt, encode_dynamic,
    };

    #[test]
    fn msgpack_field_is_preferred_and_written() {
        let ty = Type::object([("a", Type::String), ("n", Type::Number)]);
        let v = Value::object([("a", s("x")), ("n", num("1e400"))]);
        let dv = encode_dynamic(&v, &ty).unwrap();
        assert!(dv.json.is_empty());
        assert_eq!(dv.msgpack, encode(&v, &ty).unwrap());
        assert_eq!(decode_dynamic(&dv, &ty).unwrap(), v);
        // with both set, msgpack wins
        let both = pb::DynamicValue {
            msgpack: dv.msgpack.clone(),
            json: br#"{"a":"other"}"#.to_vec(),
        };
        assert_eq!(decode_dynamic(&both, &ty).unwrap(), v);
    }

    #[test]
    fn json_field_is_read_when_msgpack_is_empty() {
        let ty = Type::object([("a", Type::String), ("n", Type::Number)]);
        let dv = pb::DynamicValue {
            msgpack: Vec::new(),
            json: br#"{"n":18446744073709551617}"#.to_vec(),
        };
        assert_eq!(
            decode_dynamic(&dv, &ty).unwrap(),
            Value::object([("a", Value::Null), ("n", num("18446744073709551617"))])
        );
    }

    #[test]
    fn empty_or_absent_dynamic_value_is_null() {
        let ty = Type::object([("a", Type::String)]);
        assert_eq!(
            decode_dynamic(&pb::DynamicValue::default(), &ty).unwrap(),
            Value::Null
        );
        assert_eq!(decode_dynamic_opt(None, &ty).unwrap(), Value::Null);
        let nil = encode_dynamic(&Value::Null, &ty).unwrap();
        assert_eq!(nil.msgpack, vec![0xc0]);
    }

    #[test]
    fn codec_errors_become_diagnostics_at_the_path() {
        let ty = Type::object([("a", Type::object([("b", Type::Bool)]))]);
        let dv = pb::DynamicValue {
            msgpack: Vec::new(),
            json: br#"{"a":{"b":"hunter2"}}"#.to_vec(),
        };
        let e = decode_dynamic(&dv, &ty).unwrap_err();
        let d = cty_error_diagnostic("Invalid configuration value", &e);
        assert!(d.is_error());
        assert_eq!(d.attribute.unwrap().to_string(), "a.b");
        assert!(!d.detail.contains("hunter2"), "{}", d.detail);
    }
}
