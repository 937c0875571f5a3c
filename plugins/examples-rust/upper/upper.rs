//! upper: a shardwork record-handler plugin written in Rust against ABI v1
//! (plugins/abi/ABI.md) with no crates. For each record it emits the data
//! with ASCII letters upper-cased (same partition key), skips empty records,
//! and fails records that are not UTF-8.
//!
//! Build: rustc --target wasm32-unknown-unknown --crate-type cdylib --edition 2021 \
//!        -C opt-level=s -C panic=abort -o upper.wasm upper.rs

static mut INPUT: Vec<u8> = Vec::new();
static mut OUTPUT: Vec<u8> = Vec::new();
static mut LAST_ERROR: Vec<u8> = Vec::new();

const DESCRIPTION: &[u8] = br#"{"name":"upper","version":"1.0.0","abi":1,"kinds":["handler"],"summary":"upper-cases ASCII letters and emits each record (Rust, no crates)"}"#;

const MAGIC: u32 = 0x3142_5753;
const HEADER: usize = 32;
const ENTRY: usize = 64;
const RESULT: usize = 16;
const OP_HANDLE: u16 = 5;
const STATUS_FAIL: u32 = 2;
const STATUS_SKIP: u32 = 3;

#[link(wasm_import_module = "shardwork_v1")]
extern "C" {
    #[link_name = "log"]
    fn host_log(level: i32, ptr: *const u8, len: i32);
}

fn pack(ptr: *const u8, len: usize) -> i64 {
    (((ptr as usize as u64) << 32) | len as u64) as i64
}

fn set_error(msg: &str) -> i64 {
    unsafe {
        LAST_ERROR.clear();
        LAST_ERROR.extend_from_slice(msg.as_bytes());
    }
    0
}

fn rd16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn rd32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn wr32(b: &mut Vec<u8>, v: u32) {
    b.extend_from_slice(&v.to_le_bytes());
}

/// The bytes of field (offset, length) at `at`, checked against the data area.
fn field<'a>(b: &'a [u8], at: usize, data_start: usize) -> Result<&'a [u8], &'static str> {
    let off = rd32(b, at) as usize;
    let len = rd32(b, at + 4) as usize;
    if len == 0 {
        return Ok(&[]);
    }
    if off < data_start || off.checked_add(len).map_or(true, |end| end > b.len()) {
        return Err("field outside the data area");
    }
    Ok(&b[off..off + len])
}

#[no_mangle]
pub extern "C" fn abi_version() -> i32 {
    1
}

#[no_mangle]
pub extern "C" fn reserve(size: i32) -> i32 {
    unsafe {
        INPUT.clear();
        INPUT.resize(size.max(0) as usize + 1, 0);
        INPUT.as_mut_ptr() as usize as i32
    }
}

#[no_mangle]
pub extern "C" fn describe() -> i64 {
    pack(DESCRIPTION.as_ptr(), DESCRIPTION.len())
}

#[no_mangle]
pub extern "C" fn init(_len: i32) -> i32 {
    let msg = b"upper plugin ready";
    unsafe { host_log(0, msg.as_ptr(), msg.len() as i32) };
    0
}

#[no_mangle]
pub extern "C" fn last_error() -> i64 {
    unsafe { pack(LAST_ERROR.as_ptr(), LAST_ERROR.len()) }
}

struct Emit {
    pk: (usize, usize),
    data: Vec<u8>,
}

#[no_mangle]
pub extern "C" fn handle(len: i32) -> i64 {
    let input: &[u8] = unsafe {
        if len < 0 || len as usize >= INPUT.len() {
            return set_error("handle: input length outside the reserved buffer");
        }
        &INPUT[..len as usize]
    };
    if input.len() < HEADER || rd32(input, 0) != MAGIC || rd16(input, 4) != 1 || rd16(input, 6) != OP_HANDLE {
        return set_error("handle: not an ABI v1 handle batch");
    }
    let nrec = rd32(input, 8) as usize;
    let nres = rd32(input, 12) as usize;
    let data_start = HEADER + ENTRY * nrec + RESULT * nres;
    if nrec > input.len() / ENTRY || data_start > input.len() {
        return set_error("handle: tables longer than the batch");
    }
    let mut emits: Vec<Emit> = Vec::with_capacity(nrec);
    let mut results: Vec<(u32, u32, &'static str)> = Vec::new();
    for i in 0..nrec {
        let e = HEADER + ENTRY * i;
        let data = match field(input, e, data_start) {
            Ok(d) => d,
            Err(m) => return set_error(m),
        };
        if field(input, e + 8, data_start).is_err() {
            return set_error("partition key outside the data area");
        }
        let pk = (rd32(input, e + 8) as usize, rd32(input, e + 12) as usize);
        if data.is_empty() {
            results.push((i as u32, STATUS_SKIP, "empty record"));
            continue;
        }
        match std::str::from_utf8(data) {
            Ok(s) => emits.push(Emit { pk, data: s.to_ascii_uppercase().into_bytes() }),
            Err(_) => results.push((i as u32, STATUS_FAIL, "record is not UTF-8")),
        }
    }
    let out = unsafe { &mut OUTPUT };
    out.clear();
    wr32(out, MAGIC);
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&OP_HANDLE.to_le_bytes());
    wr32(out, emits.len() as u32);
    wr32(out, results.len() as u32);
    out.extend_from_slice(&[0u8; 16]); // deadline, param, reserved
    let mut off = HEADER + ENTRY * emits.len() + RESULT * results.len();
    for em in &emits {
        let pk_len = if em.pk.1 == 0 { 0 } else { em.pk.1 };
        wr32(out, off as u32);
        wr32(out, em.data.len() as u32);
        off += em.data.len();
        wr32(out, if pk_len == 0 { 0 } else { off as u32 });
        wr32(out, pk_len as u32);
        off += pk_len;
        out.extend_from_slice(&[0u8; ENTRY - 16]);
    }
    for (idx, status, msg) in &results {
        wr32(out, *idx);
        wr32(out, *status);
        wr32(out, off as u32);
        wr32(out, msg.len() as u32);
        off += msg.len();
    }
    for em in &emits {
        out.extend_from_slice(&em.data);
        out.extend_from_slice(&input[em.pk.0..em.pk.0 + em.pk.1]);
    }
    for (_, _, msg) in &results {
        out.extend_from_slice(msg.as_bytes());
    }
    pack(out.as_ptr(), out.len())
}
