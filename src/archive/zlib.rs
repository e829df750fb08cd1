//! The one file that calls zlib (zlib-rs behind zlib's C API): an owned raw-deflate inflate
//! stream with the calls zran-style seek points need (`inflatePrime`, `inflateSetDictionary`,
//! `inflateGetDictionary`, `Z_BLOCK`), and the compression of stored windows. zlib-rs is used
//! rather than the system zlib 1.2.13 for its faster inflate; flate2 does not expose these calls.

use std::ffi::CStr;
use std::io;
use std::os::raw::{c_int, c_uint};
use std::ptr;

use libz_rs_sys as z;

pub(crate) use libz_rs_sys::{Z_BLOCK, Z_BUF_ERROR, Z_DATA_ERROR, Z_MEM_ERROR, Z_NO_FLUSH, Z_OK, Z_STREAM_END};

/// Size of a deflate window (the most history a back-reference can reach).
pub(crate) const WINSIZE: usize = 32 * 1024;
/// zlib's inflate state with its 32 KiB window, as allocated by `inflateInit2`.
pub(crate) const ZLIB_INFLATE_STATE: usize = 48 << 10;
/// zlib level used to compress stored windows (1 is fast and gets most of the gain).
const WINDOW_LEVEL: c_int = 1;

/// An owned raw-deflate (`windowBits = -15`) inflate stream. The `z_stream` is boxed because
/// zlib's state keeps a pointer back to it: it must never move after `inflateInit2`.
pub(crate) struct Inflater {
    strm: Box<z::z_stream>,
}

// SAFETY: the stream and its zlib state are owned exclusively by this value (no aliasing, no
// thread-local state in zlib); `next_in`/`next_out` are only set for the duration of one call.
unsafe impl Send for Inflater {}

impl Inflater {
    pub(crate) fn new_raw() -> io::Result<Inflater> {
        let mut strm = Box::new(z::z_stream {
            next_in: ptr::null_mut(),
            avail_in: 0,
            total_in: 0,
            next_out: ptr::null_mut(),
            avail_out: 0,
            total_out: 0,
            msg: ptr::null_mut(),
            state: ptr::null_mut(),
            // zlib-rs's own allocator.
            zalloc: None,
            zfree: None,
            opaque: ptr::null_mut(),
            data_type: 0,
            adler: 0,
            reserved: 0,
        });
        // SAFETY: `strm` is a fully initialised z_stream at a stable heap address; the version
        // string and struct size are the ones zlib checks against.
        let ret =
            unsafe { z::inflateInit2_(&mut *strm, -15, z::zlibVersion(), std::mem::size_of::<z::z_stream>() as c_int) };
        if ret != z::Z_OK {
            // inflateInit2 failed: no state was allocated, so there is nothing to inflateEnd.
            return Err(io::Error::new(io::ErrorKind::OutOfMemory, format!("inflateInit2 failed ({ret})")));
        }
        Ok(Inflater { strm })
    }

    /// Starts a new raw deflate stream (next member).
    pub(crate) fn reset(&mut self) {
        // SAFETY: the stream was initialised by inflateInit2 and has not moved.
        unsafe { z::inflateReset(&mut *self.strm) };
    }

    /// Feeds the `bits` high bits of a byte that a seek point starts inside.
    pub(crate) fn prime(&mut self, bits: u8, value: u8) -> io::Result<()> {
        // SAFETY: initialised stream; inflatePrime only updates the bit buffer.
        let ret = unsafe { z::inflatePrime(&mut *self.strm, bits as c_int, value as c_int) };
        zcheck(ret, "inflatePrime")
    }

    pub(crate) fn set_dictionary(&mut self, dict: &[u8]) -> io::Result<()> {
        if dict.is_empty() {
            return Ok(());
        }
        // SAFETY: initialised stream; `dict` is valid for `dict.len()` bytes (<= 32 KiB) and zlib
        // copies it into its own window before returning.
        let ret = unsafe { z::inflateSetDictionary(&mut *self.strm, dict.as_ptr(), dict.len() as c_uint) };
        zcheck(ret, "inflateSetDictionary")
    }

    /// Copies the current window (up to 32 KiB of most recent output) into `out`; returns its length.
    pub(crate) fn dictionary(&mut self, out: &mut [u8; WINSIZE]) -> usize {
        let mut len: c_uint = 0;
        // SAFETY: initialised raw stream (windowBits 15), so the window never exceeds 32 KiB and
        // `out` has room for all of it.
        let ret = unsafe { z::inflateGetDictionary(&*self.strm, out.as_mut_ptr(), &mut len) };
        if ret != z::Z_OK { 0 } else { (len as usize).min(WINSIZE) }
    }

    /// One `inflate` call; returns (zlib return code, bytes consumed, bytes produced).
    pub(crate) fn inflate(&mut self, input: &[u8], output: &mut [u8], flush: c_int) -> (c_int, usize, usize) {
        let avail_in = input.len().min(u32::MAX as usize) as c_uint;
        let avail_out = output.len().min(u32::MAX as usize) as c_uint;
        self.strm.next_in = input.as_ptr() as *mut u8;
        self.strm.avail_in = avail_in;
        self.strm.next_out = output.as_mut_ptr();
        self.strm.avail_out = avail_out;
        // SAFETY: initialised stream that has not moved; next_in is valid for reading avail_in
        // bytes (zlib never writes through it) and next_out for writing avail_out bytes, both
        // borrowed for the whole call. The pointers are cleared right after.
        let ret = unsafe { z::inflate(&mut *self.strm, flush) };
        let consumed = (avail_in - self.strm.avail_in) as usize;
        let produced = (avail_out - self.strm.avail_out) as usize;
        self.strm.next_in = ptr::null_mut();
        self.strm.avail_in = 0;
        self.strm.next_out = ptr::null_mut();
        self.strm.avail_out = 0;
        (ret, consumed, produced)
    }

    pub(crate) fn data_type(&self) -> c_int {
        self.strm.data_type
    }

    /// zlib's message for the last error.
    pub(crate) fn msg(&self) -> String {
        if self.strm.msg.is_null() {
            "invalid deflate data".to_string()
        } else {
            // SAFETY: zlib sets `msg` to a static NUL-terminated string.
            unsafe { CStr::from_ptr(self.strm.msg) }.to_string_lossy().into_owned()
        }
    }
}

impl Drop for Inflater {
    fn drop(&mut self) {
        // SAFETY: the stream was initialised by inflateInit2 (constructed only on success) and
        // is ended exactly once.
        unsafe { z::inflateEnd(&mut *self.strm) };
    }
}

fn zcheck(ret: c_int, what: &str) -> io::Result<()> {
    if ret == z::Z_OK {
        Ok(())
    } else {
        Err(io::Error::new(io::ErrorKind::InvalidData, format!("{what} failed ({ret})")))
    }
}

/// Compresses a window with zlib `compress2`; `None` when that does not make it smaller.
pub(crate) fn compress_window(win: &[u8], scratch: &mut Vec<u8>) -> Option<Box<[u8]>> {
    // compressBound is a safe, pure function: the worst-case compressed size.
    let bound = z::compressBound(win.len() as _) as usize;
    scratch.resize(bound, 0);
    let mut dest_len = bound as _;
    // SAFETY: `scratch` is writable for `bound` bytes (the bound zlib guarantees to suffice) and
    // `win` readable for its length; compress2 keeps neither pointer.
    let ret = unsafe { z::compress2(scratch.as_mut_ptr(), &mut dest_len, win.as_ptr(), win.len() as _, WINDOW_LEVEL) };
    let n = dest_len as usize;
    (ret == z::Z_OK && n < win.len()).then(|| scratch[..n].into())
}

/// Decompresses a window stored by [`compress_window`]; it must come out exactly `wlen` bytes.
pub(crate) fn uncompress_window(stored: &[u8], wlen: usize) -> io::Result<Vec<u8>> {
    let mut out = vec![0u8; wlen];
    let mut dest_len = wlen as _;
    // SAFETY: `out` is writable for `wlen` bytes and zlib writes at most `dest_len` bytes;
    // `stored` is readable for its length.
    let ret = unsafe { z::uncompress(out.as_mut_ptr(), &mut dest_len, stored.as_ptr(), stored.len() as _) };
    if ret != z::Z_OK || dest_len as usize != wlen {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "corrupt seek point window in gzip index"));
    }
    Ok(out)
}
