//! Dataset profiles: golden trees of every shipped profile on path lists mimicking the real
//! downloads, validation errors, and NIH scale. A new profile's test goes here as described in
//! `mounts/README.md` ("Adding a dataset").

mod abide;
mod adni;
mod belarus_tb;
mod brats;
mod cbis;
mod cervix;
mod chestxray14;
mod common;
mod ddsm;
mod drive;
mod i2cvb;
mod i_elcap;
mod kaggle_dr;
mod lidc;
mod medpix;
mod mixed;
mod mura;
mod nih_scale;
mod oasis;
mod scmr;
mod scr;
mod usc_sipi;
mod validation;
mod visceral;
