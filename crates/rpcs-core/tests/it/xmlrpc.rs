use rpcs_core::xmlrpc::{
    decode_request, decode_response, encode_request, encode_response, DecodeError, Limits,
};
use rpcs_core::{DateTime, Fault, Map, Value};

fn lim() -> Limits {
    Limits::default()
}

fn call(body: &str) -> String {
    format!("<?xml version='1.0'?><methodCall><methodName>m</methodName><params>{body}</params></methodCall>")
}

fn one(value_xml: &str) -> Result<Value, DecodeError> {
    let req = decode_request(
        call(&format!("<param>{value_xml}</param>")).as_bytes(),
        &lim(),
    )?;
    assert_eq!(req.method, "m");
    Ok(req.params.into_iter().next().unwrap())
}

fn sample() -> Value {
    let mut inner = Map::new();
    inner.insert("zeta".into(), Value::Int(1));
    inner.insert("alpha".into(), Value::Nil);
    let mut outer = Map::new();
    outer.insert("name".into(), Value::String("Arthur <&> \r\n ÿ 漢".into()));
    outer.insert("data".into(), Value::Struct(inner));
    Value::Array(vec![
        Value::Int(42),
        Value::Int(-(1 << 40)),
        Value::Int(i64::MIN),
        Value::Bool(true),
        Value::Double(2.5),
        Value::Double(-1e300),
        Value::String(String::new()),
        Value::Bytes((0..=255).collect()),
        Value::DateTime(DateTime::new(2026, 11, 21, 5, 17, 0).unwrap()),
        Value::Array(vec![]),
        Value::Struct(outer),
    ])
}

#[test]
fn request_round_trip_preserves_everything() {
    let params = vec![sample(), Value::Nil, Value::String("  spaced  ".into())];
    let bytes = encode_request("stack.push", &params).unwrap();
    let req = decode_request(&bytes, &lim()).unwrap();
    assert_eq!(req.method, "stack.push");
    assert_eq!(req.params, params);
}

#[test]
fn response_round_trip_value_and_fault() {
    let ok = Ok(sample());
    assert_eq!(decode_response(&encode_response(&ok), &lim()).unwrap(), ok);
    let fault = Err(Fault::named("StackIndexError", "pop from empty stack"));
    assert_eq!(
        decode_response(&encode_response(&fault), &lim()).unwrap(),
        fault
    );
}

#[test]
fn ints_use_i8_only_beyond_32_bits() {
    let small =
        String::from_utf8(encode_request("m", &[Value::Int(i32::MAX.into())]).unwrap()).unwrap();
    assert!(small.contains("<int>2147483647</int>"), "{small}");
    let big = String::from_utf8(encode_request("m", &[Value::Int(1 << 31)]).unwrap()).unwrap();
    assert!(big.contains("<i8>2147483648</i8>"), "{big}");
}

#[test]
fn every_integer_tag_is_read() {
    for tag in ["int", "i4", "i8", "i1", "i2", "biginteger", "ex:i8"] {
        assert_eq!(
            one(&format!("<value><{tag}> -12 </{tag}></value>")),
            Ok(Value::Int(-12)),
            "{tag}"
        );
    }
    assert_eq!(one("<value><int>+7</int></value>"), Ok(Value::Int(7)));
    assert_eq!(
        one("<value><i8>9223372036854775807</i8></value>"),
        Ok(Value::Int(i64::MAX))
    );
}

#[test]
fn scalar_forms() {
    assert_eq!(
        one("<value>bare text</value>"),
        Ok(Value::String("bare text".into()))
    );
    assert_eq!(one("<value></value>"), Ok(Value::String(String::new())));
    assert_eq!(one("<value/>"), Ok(Value::String(String::new())));
    assert_eq!(
        one("<value><string/></value>"),
        Ok(Value::String(String::new()))
    );
    assert_eq!(
        one("<value><string> a &amp; b &#x263A; &#13;</string></value>"),
        Ok(Value::String(" a & b ☺ \r".into()))
    );
    assert_eq!(
        one("<value><string><![CDATA[<raw> & ]]>tail</string></value>"),
        Ok(Value::String("<raw> & tail".into()))
    );
    assert_eq!(one("<value><nil/></value>"), Ok(Value::Nil));
    assert_eq!(one("<value><nil></nil></value>"), Ok(Value::Nil));
    assert_eq!(one("<value><ex:nil/></value>"), Ok(Value::Nil));
    assert_eq!(
        one("<value><boolean>1</boolean></value>"),
        Ok(Value::Bool(true))
    );
    assert_eq!(
        one("<value><boolean>0</boolean></value>"),
        Ok(Value::Bool(false))
    );
    assert_eq!(
        one("<value><double>8</double></value>"),
        Ok(Value::Double(8.0))
    );
    assert_eq!(
        one("<value><double>-1.5e3</double></value>"),
        Ok(Value::Double(-1500.0))
    );
    assert_eq!(
        one("<value><dateTime.iso8601>20261121T05:17:00</dateTime.iso8601></value>"),
        Ok(Value::DateTime(
            DateTime::new(2026, 11, 21, 5, 17, 0).unwrap()
        ))
    );
    // Python's encodebytes splits base64 over lines.
    assert_eq!(
        one("<value><base64>aGVs\nbG8=\n</base64></value>"),
        Ok(Value::Bytes(b"hello".to_vec()))
    );
    assert_eq!(one("<value><base64/></value>"), Ok(Value::Bytes(vec![])));
    assert_eq!(
        one("<value><array><data/></array></value>"),
        Ok(Value::Array(vec![]))
    );
    assert_eq!(one("<value><array/></value>"), Ok(Value::Array(vec![])));
    assert_eq!(
        one("<value><struct/></value>"),
        Ok(Value::Struct(Map::new()))
    );
}

#[test]
fn struct_member_order_and_duplicates() {
    let v = one("<value><struct>
        <member><name>b</name><value><int>1</int></value></member>
        <member><name>a</name><value>x</value></member>
        <member><name>b</name><value><int>2</int></value></member>
        </struct></value>")
    .unwrap();
    let m = v.as_struct().unwrap();
    assert_eq!(m.keys().collect::<Vec<_>>(), ["b", "a"]);
    assert_eq!(m["b"], Value::Int(2));
}

#[test]
fn whitespace_layout_like_python_sends() {
    let xml = "<?xml version='1.0'?>\n<methodCall>\n<methodName>add</methodName>\n<params>\n<param>\n<value><int>2</int></value>\n</param>\n<param>\n<value><array><data>\n<value><int>1</int></value>\n</data></array></value>\n</param>\n</params>\n</methodCall>\n";
    let req = decode_request(xml.as_bytes(), &lim()).unwrap();
    assert_eq!(
        req.params,
        vec![Value::Int(2), Value::Array(vec![Value::Int(1)])]
    );
    let no_params = "<methodCall><methodName>system.listMethods</methodName></methodCall>";
    assert_eq!(
        decode_request(no_params.as_bytes(), &lim()).unwrap().params,
        vec![]
    );
    let empty_params = "<!-- hi --><methodCall><methodName>x</methodName><params/></methodCall>";
    assert_eq!(
        decode_request(empty_params.as_bytes(), &lim())
            .unwrap()
            .params,
        vec![]
    );
}

fn rejects(xml: &str) -> DecodeError {
    decode_request(xml.as_bytes(), &lim()).expect_err(xml)
}

#[test]
fn malformed_documents_are_errors() {
    for xml in [
        "",
        "<methodCall>",
        "<methodCall><methodName>m</methodName><params><param><value><int>1</int>",
        "<methodCall><methodName>m</methodName></methodCal>",
        "<methodCall><methodName>m</methodName><params><param><value><int>1</value></int></param></params></methodCall>",
        "not xml at all",
        "<methodCall><methodName>m</methodName></methodCall><extra/>",
    ] {
        assert!(matches!(rejects(xml), DecodeError::Syntax(_)), "{xml}");
    }
    assert!(matches!(rejects("<a/>"), DecodeError::Invalid(_)));
}

#[test]
fn invalid_calls_are_errors() {
    for (xml, what) in [
        (
            call("<param><value><float3>1</float3></value></param>"),
            "unknown type",
        ),
        (
            call("<param><value><int>12x</int></value></param>"),
            "bad int",
        ),
        (
            call("<param><value><int>99999999999999999999</int></value></param>"),
            "huge int",
        ),
        (
            call("<param><value><biginteger>-99999999999999999999999</biginteger></value></param>"),
            "huge bigint",
        ),
        (
            call("<param><value><boolean>2</boolean></value></param>"),
            "bad bool",
        ),
        (
            call("<param><value><double>one</double></value></param>"),
            "bad double",
        ),
        (
            call("<param><value><base64>@@@@</base64></value></param>"),
            "bad base64",
        ),
        (
            call("<param><value><dateTime.iso8601>yesterday</dateTime.iso8601></value></param>"),
            "bad date",
        ),
        (
            call("<param><value>text<int>1</int></value></param>"),
            "mixed",
        ),
        (
            call("<param><value><int><b>1</b></int></value></param>"),
            "element in scalar",
        ),
        (
            call(
                "<param><value><struct><member><value>1</value></member></struct></value></param>",
            ),
            "member without name",
        ),
        (
            call("<param><value><array><value>1</value></array></value></param>"),
            "array without data",
        ),
        (call("<param>stray<value>1</value></param>"), "stray text"),
        (call("<param><value><int/></value></param>"), "empty int"),
        (
            "<methodCall><methodName> </methodName></methodCall>".to_owned(),
            "empty name",
        ),
        (
            "<methodCall><methodName>a<b/></methodName></methodCall>".to_owned(),
            "element in name",
        ),
    ] {
        let err = decode_request(xml.as_bytes(), &lim()).expect_err(what);
        assert!(matches!(err, DecodeError::Invalid(_)), "{what}: {err:?}");
    }
}

#[test]
fn doctype_and_entities_are_refused() {
    let billion = r#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><methodCall><methodName>&lol2;</methodName></methodCall>"#;
    assert_eq!(rejects(billion), DecodeError::Doctype);
    let external = r#"<!DOCTYPE x SYSTEM "file:///etc/passwd"><methodCall><methodName>m</methodName></methodCall>"#;
    assert_eq!(rejects(external), DecodeError::Doctype);
    // An entity that was never defined is not expanded either.
    let undefined = "<methodCall><methodName>&xxe;</methodName></methodCall>";
    assert!(matches!(rejects(undefined), DecodeError::Syntax(_)));
}

#[test]
fn size_and_depth_limits() {
    let small = Limits {
        max_size: 64,
        max_depth: 64,
    };
    let big = call(&"<param><value>x</value></param>".repeat(10));
    assert!(matches!(
        decode_request(big.as_bytes(), &small),
        Err(DecodeError::TooLarge { .. })
    ));

    let nest = |n: usize| {
        let open = "<value><array><data>".repeat(n);
        let close = "</data></array></value>".repeat(n);
        call(&format!("<param>{open}{close}</param>"))
    };
    assert!(decode_request(nest(64).as_bytes(), &lim()).is_ok());
    assert_eq!(
        decode_request(nest(65).as_bytes(), &lim()),
        Err(DecodeError::TooDeep(64))
    );
    // Far deeper than the limit is refused quickly, without exhausting the stack.
    assert_eq!(
        decode_request(
            nest(100_000).as_bytes(),
            &Limits {
                max_size: usize::MAX,
                max_depth: 64
            }
        ),
        Err(DecodeError::TooDeep(64))
    );
}

#[test]
fn decode_errors_map_to_fault_codes() {
    assert_eq!(Fault::from(rejects("<x")).code, Fault::PARSE_ERROR);
    assert_eq!(
        Fault::from(rejects("<!DOCTYPE x><x/>")).code,
        Fault::PARSE_ERROR
    );
    assert_eq!(Fault::from(rejects("<a/>")).code, Fault::INVALID_REQUEST);
}

#[test]
fn responses_from_python_are_read() {
    let ok = "<?xml version='1.0'?>\n<methodResponse>\n<params>\n<param>\n<value><array><data>\n<value><double>0.0</double></value>\n<value><double>8.0</double></value>\n</data></array></value>\n</param>\n</params>\n</methodResponse>\n";
    assert_eq!(
        decode_response(ok.as_bytes(), &lim()).unwrap(),
        Ok(Value::Array(vec![Value::Double(0.0), Value::Double(8.0)]))
    );
    let fault = "<?xml version='1.0'?>\n<methodResponse>\n<fault>\n<value><struct>\n<member>\n<name>faultCode</name>\n<value><int>1</int></value>\n</member>\n<member>\n<name>faultString</name>\n<value><string>&lt;class 'ValueError'&gt;:math domain error</string></value>\n</member>\n</struct></value>\n</fault>\n</methodResponse>\n";
    assert_eq!(
        decode_response(fault.as_bytes(), &lim()).unwrap(),
        Err(Fault::new(1, "<class 'ValueError'>:math domain error"))
    );
    for bad in [
        "<methodResponse><params></params></methodResponse>",
        "<methodResponse><fault><value><int>1</int></value></fault></methodResponse>",
        "<methodResponse><fault><value><struct><member><name>faultCode</name><value>x</value></member></struct></value></fault></methodResponse>",
        "<methodResponse/>",
    ] {
        assert!(decode_response(bad.as_bytes(), &lim()).is_err(), "{bad}");
    }
}

#[test]
fn doubles_are_written_so_python_reads_them() {
    let xml = String::from_utf8(
        encode_request(
            "m",
            &[Value::Double(8.0), Value::Double(0.1), Value::Double(1e21)],
        )
        .unwrap(),
    )
    .unwrap();
    assert!(xml.contains("<double>8.0</double>"), "{xml}");
    assert!(xml.contains("<double>0.1</double>"), "{xml}");
    assert!(xml.contains("<double>1e21</double>"), "{xml}");
}

#[test]
fn every_truncation_is_a_syntax_error() {
    let full = encode_request("m", &[sample()]).unwrap();
    for cut in 0..full.len() - 1 {
        let prefix = &full[..cut];
        if std::str::from_utf8(prefix).is_err() {
            continue;
        }
        let err = decode_request(prefix, &lim()).expect_err("truncated");
        assert!(
            matches!(err, DecodeError::Syntax(_)),
            "cut at {cut}: {err:?}"
        );
    }
}

#[test]
fn text_outside_the_root_is_a_syntax_error() {
    for xml in [
        "not xml at all",
        "<methodCall><methodName>m</methodName></methodCall>garbage",
    ] {
        assert!(matches!(rejects(xml), DecodeError::Syntax(_)), "{xml}");
    }
}

#[test]
fn declared_and_marked_encodings() {
    let latin1 = b"<?xml version='1.0' encoding='iso-8859-1'?><methodCall><methodName>m</methodName><params><param><value><string>caf\xe9 \xff</string></value></param></params></methodCall>";
    let req = decode_request(latin1, &lim()).unwrap();
    assert_eq!(req.params, vec![Value::String("café ÿ".into())]);

    let text = "<?xml version='1.0' encoding='utf-16'?><methodCall><methodName>m</methodName><params><param><value>漢 ☺</value></param></params></methodCall>";
    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    assert_eq!(
        decode_request(&utf16, &lim()).unwrap().params,
        vec![Value::String("漢 ☺".into())]
    );

    // Single-byte encodings Python's server reads, by Python's names too.
    let doc = |enc: &str, text: &[u8]| {
        let mut d = format!("<?xml version='1.0' encoding='{enc}'?><methodCall><methodName>m</methodName><params><param><value>").into_bytes();
        d.extend_from_slice(text);
        d.extend_from_slice(b"</value></param></params></methodCall>");
        decode_request(&d, &lim()).map(|r| r.params)
    };
    let s = |t: &str| Ok(vec![Value::String(t.into())]);
    assert_eq!(doc("cp1252", b"caf\xe9 \x80"), s("café €"));
    assert_eq!(doc("windows-1252", b"\x93q\x94"), s("\u{201c}q\u{201d}"));
    assert_eq!(doc("iso-8859-15", b"\xa4"), s("€"));
    assert_eq!(doc("koi8-r", b"\xc1"), s("а"));
    assert_eq!(doc("mac-roman", b"\x8e"), s("é"));
    // Multi-byte legacy encodings are refused, as expat refuses them.
    assert!(matches!(
        doc("shift_jis", b"x"),
        Err(DecodeError::Syntax(_))
    ));
    assert!(matches!(doc("klingon", b"x"), Err(DecodeError::Syntax(_))));
    let no_bom: Vec<u8> = text
        .replace("utf-16", "utf-16le")
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    assert_eq!(
        decode_request(&no_bom, &lim()).unwrap().params,
        vec![Value::String("漢 ☺".into())]
    );
    let bom = b"\xEF\xBB\xBF<methodCall><methodName>m</methodName></methodCall>";
    assert_eq!(decode_request(bom, &lim()).unwrap().method, "m");
}

#[test]
fn raw_line_ends_are_normalised_but_escaped_ones_kept() {
    let v = one("<value><string>a\r\nb\rc&#13;d</string></value>").unwrap();
    assert_eq!(v, Value::String("a\nb\nc\rd".into()));
    let cdata = one("<value><string><![CDATA[x\r\ny]]></string></value>").unwrap();
    assert_eq!(cdata, Value::String("x\ny".into()));
}

#[test]
fn strings_xml_cannot_carry_travel_as_base64() {
    let odd = "a\u{1}b\u{b}\u{fffe}";
    let xml = String::from_utf8(encode_response(&Ok(Value::String(odd.into())))).unwrap();
    assert!(xml.contains("<base64>"), "{xml}");
    assert!(!xml.contains('\u{1}'), "{xml}");
    let back = decode_response(xml.as_bytes(), &lim()).unwrap().unwrap();
    assert_eq!(back, Value::Bytes(odd.as_bytes().to_vec()));
    // Tabs, line ends and the rest of Unicode are plain strings.
    let fine = "tab\there\nnew ☺ \u{10000}";
    let xml = String::from_utf8(encode_response(&Ok(Value::String(fine.into())))).unwrap();
    assert!(xml.contains("<string>"), "{xml}");
}

#[test]
fn values_xml_cannot_carry_become_faults_never_broken_documents() {
    let mut m = rpcs_core::Map::new();
    m.insert("bad\u{2}name".into(), Value::Int(1));
    let value = Value::Array(vec![Value::Struct(m)]);
    assert!(rpcs_core::xmlrpc::check_carriable(&value).is_err());
    let xml = encode_response(&Ok(value.clone()));
    let fault = decode_response(&xml, &lim()).unwrap().unwrap_err();
    assert_eq!(fault.name(), Some("UnrepresentableError"));
    assert!(rpcs_core::xmlrpc::encode_request("m", &[value]).is_err());
    assert!(rpcs_core::xmlrpc::encode_request("m\u{0}", &[]).is_err());
    // A fault message keeps its text, with the odd characters spelled out.
    let xml = encode_response(&Err(Fault::named("ValueError", "no stack \u{1}")));
    let fault = decode_response(&xml, &lim()).unwrap().unwrap_err();
    assert_eq!(fault.message, "ValueError: no stack \\u{1}");
}
