//! Dataset profiles: golden trees of every shipped profile on path lists mimicking the real downloads, validation errors, and NIH scale.

mod common;
mod mura;
mod chestxray14;
mod drive;
mod kaggle_dr;
mod ddsm;
mod scr;
mod usc_sipi;
mod mixed;
mod validation;
mod nih_scale;
