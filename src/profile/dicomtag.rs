//! DICOM keywords profiles may name (`[[files]] dicom = { pid = "PatientID" }`, field
//! `dicom = "StudyDate"`), mapped onto the header fields [`crate::dicom::DicomInfo`] keeps.

use serde_json::{Number, Value};

use crate::dicom::DicomInfo;

/// Every keyword a profile may use, in DICOM tag order.
pub const KEYWORDS: [&str; 26] = [
    "TransferSyntaxUID",
    "SOPClassUID",
    "SOPInstanceUID",
    "StudyDate",
    "Modality",
    "Manufacturer",
    "StudyDescription",
    "SeriesDescription",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "PatientAge",
    "BodyPartExamined",
    "SliceThickness",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "StudyID",
    "SeriesNumber",
    "InstanceNumber",
    "ImagePositionPatient",
    "ImageOrientationPatient",
    "SliceLocation",
    "NumberOfFrames",
    "Rows",
    "Columns",
    "PixelSpacing",
];

fn f(x: f64) -> Value {
    Number::from_f64(x).map(Value::Number).unwrap_or(Value::Null)
}

fn s(x: &Option<String>) -> Option<Value> {
    x.as_ref().filter(|v| !v.is_empty()).map(|v| Value::String(v.clone()))
}

/// The typed value of a keyword (text as strings, IS as integers, DS as numbers, multi-valued as
/// lists); `None` when the header lacks it.
pub fn value(info: &DicomInfo, kw: &str) -> Option<Value> {
    match kw {
        "TransferSyntaxUID" => s(&info.transfer_syntax),
        "SOPClassUID" => s(&info.sop_class_uid),
        "SOPInstanceUID" => s(&info.sop_uid),
        "StudyDate" => s(&info.study_date),
        "Modality" => s(&info.modality),
        "Manufacturer" => s(&info.manufacturer),
        "StudyDescription" => s(&info.study_description),
        "SeriesDescription" => s(&info.series_description),
        "PatientID" => s(&info.patient_id),
        "PatientBirthDate" => s(&info.patient_birth_date),
        "PatientSex" => s(&info.patient_sex),
        "PatientAge" => s(&info.patient_age),
        "BodyPartExamined" => s(&info.body_part),
        "SliceThickness" => info.slice_thickness.map(f),
        "StudyInstanceUID" => s(&info.study_uid),
        "SeriesInstanceUID" => s(&info.series_uid),
        "StudyID" => s(&info.study_id),
        "SeriesNumber" => info.series_number.map(Value::from),
        "InstanceNumber" => info.instance_number.map(Value::from),
        "ImagePositionPatient" => info.image_position.map(|p| Value::Array(p.iter().map(|x| f(*x)).collect())),
        "ImageOrientationPatient" => info.image_orientation.map(|p| Value::Array(p.iter().map(|x| f(*x)).collect())),
        "SliceLocation" => info.slice_location.map(f),
        "NumberOfFrames" => info.number_of_frames.map(Value::from),
        "Rows" => info.rows.map(Value::from),
        "Columns" => info.columns.map(Value::from),
        "PixelSpacing" => info.pixel_spacing.map(|p| Value::Array(p.iter().map(|x| f(*x)).collect())),
        _ => None,
    }
}

/// The keyword's value as capture text: strings verbatim, numbers in JSON form, lists joined
/// with `\` (the DICOM multi-value separator).
pub fn text(info: &DicomInfo, kw: &str) -> Option<String> {
    match value(info, kw)? {
        Value::String(s) => Some(s),
        Value::Array(a) => Some(a.iter().map(|v| v.to_string()).collect::<Vec<_>>().join("\\")),
        v => Some(v.to_string()),
    }
}
