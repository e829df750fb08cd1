//! The BIDS-style JSON sidecar of a derived NIfTI (`<series>.json` beside `<series>.nii`): the
//! acquisition fields dcm2niix writes, as far as medfs's header scan carries them, from the
//! volume's first slice (as dcm2niix takes them). Pure and deterministic: the same headers give
//! the same bytes, so the size is known when the tree is built.
//!
//! Keys are BIDS's (and dcm2niix's) names, in dcm2niix's order, absent when the DICOM has no
//! value. Times are converted from DICOM's milliseconds to BIDS's seconds; numbers keep at
//! most 6 significant digits, as dcm2niix's `%g` prints them.

use serde_json::Value;

use crate::derive::nifti::VolumePlan;
use crate::dicom::DicomInfo;

/// A number as dcm2niix prints it (`%g`: 6 significant digits), e.g. 2.5 ms -> 0.0025 s.
fn g6(x: f64) -> Value {
    let rounded: f64 = format!("{x:.5e}").parse().unwrap_or(x);
    if rounded.fract() == 0.0 && rounded.abs() < 1e15 {
        Value::from(rounded as i64)
    } else {
        serde_json::Number::from_f64(rounded).map_or(Value::Null, Value::Number)
    }
}

fn text(v: &Option<String>) -> Option<Value> {
    v.as_ref().map(|s| Value::from(s.as_str()))
}

fn num(v: Option<f64>) -> Option<Value> {
    v.map(g6)
}

/// The sidecar of the volume `plan` made from `slices` (the same slices, in the same order,
/// as given to [`crate::derive::nifti::plan`]).
pub fn sidecar(plan: &VolumePlan, slices: &[&DicomInfo]) -> Vec<u8> {
    let first = slices[plan.order[0]];
    let fields: [(&str, Option<Value>); 19] = [
        ("Modality", text(&first.modality)),
        ("MagneticFieldStrength", num(first.magnetic_field_strength)),
        ("Manufacturer", text(&first.manufacturer)),
        ("ManufacturersModelName", text(&first.manufacturer_model)),
        ("PatientPosition", text(&first.patient_position)),
        ("SoftwareVersions", text(&first.software_versions)),
        ("BodyPartExamined", text(&first.body_part)),
        ("SeriesDescription", text(&first.series_description)),
        ("ProtocolName", text(&first.protocol_name)),
        ("ImageType", first.image_type.as_ref().map(|t| Value::from(t.split('\\').map(str::trim).collect::<Vec<_>>()))),
        ("SeriesNumber", first.series_number.map(Value::from)),
        ("ImageOrientationPatientDICOM", first.image_orientation.map(|o| Value::from(o.map(g6).to_vec()))),
        ("SliceThickness", num(first.slice_thickness)),
        ("SpacingBetweenSlices", num(first.spacing_between_slices)),
        ("EchoTime", num(first.echo_time.map(|ms| ms / 1000.0))),
        ("RepetitionTime", num(first.repetition_time.map(|ms| ms / 1000.0))),
        ("FlipAngle", num(first.flip_angle)),
        ("ConversionSoftware", Some(Value::from("medfs"))),
        ("ConversionSoftwareVersion", Some(Value::from(env!("CARGO_PKG_VERSION")))),
    ];
    // Written by hand, not through a map, so the order is dcm2niix's whatever serde_json's
    // map features are.
    let mut out = String::from("{\n");
    let present: Vec<_> = fields.iter().filter_map(|(k, v)| v.as_ref().map(|v| (k, v))).collect();
    for (i, (k, v)) in present.iter().enumerate() {
        let sep = if i + 1 < present.len() { "," } else { "" };
        out.push_str(&format!("\t{}: {}{sep}\n", Value::from(**k), v));
    }
    out.push_str("}\n");
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::derive::nifti::plan;

    fn slice(z: f64, instance: i64) -> DicomInfo {
        DicomInfo {
            modality: Some("MR".into()),
            manufacturer: Some("SIEMENS".into()),
            manufacturer_model: Some("Prisma".into()),
            series_description: Some("t1_mprage \"sag\"".into()),
            protocol_name: Some("t1_mprage".into()),
            image_type: Some("ORIGINAL\\PRIMARY\\M\\ND".into()),
            series_number: Some(5),
            slice_thickness: Some(1.0),
            echo_time: Some(2.98),
            repetition_time: Some(2300.0),
            magnetic_field_strength: Some(3.0),
            flip_angle: Some(9.0),
            instance_number: Some(instance),
            rows: Some(2),
            columns: Some(2),
            pixel_spacing: Some([1.0, 1.0]),
            image_orientation: Some([1.0, 0.0, 0.0, 0.0, 1.0, 0.0]),
            image_position: Some([0.0, 0.0, z]),
            ..DicomInfo::default()
        }
    }

    #[test]
    fn sidecar_fields_units_and_determinism() {
        let s = [slice(1.0, 2), slice(0.0, 1), slice(2.0, 3)];
        let refs: Vec<&DicomInfo> = s.iter().collect();
        let p = plan(&refs).unwrap();
        let bytes = sidecar(&p, &refs);
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(v["Modality"], "MR");
        assert_eq!(v["EchoTime"], 0.00298);
        assert_eq!(v["RepetitionTime"], 2.3);
        assert_eq!(v["MagneticFieldStrength"], 3);
        assert_eq!(v["ImageType"], serde_json::json!(["ORIGINAL", "PRIMARY", "M", "ND"]));
        assert_eq!(v["SeriesDescription"], "t1_mprage \"sag\"");
        assert_eq!(v["SeriesNumber"], 5);
        assert!(v.get("PatientPosition").is_none(), "absent values are left out");
        // Keys in dcm2niix's order, and the same bytes every time.
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.find("\"Modality\"").unwrap() < text.find("\"ConversionSoftware\"").unwrap());
        assert_eq!(sidecar(&p, &refs), bytes);
        assert_eq!(g6(1.0 / 3.0), serde_json::json!(0.333333));
    }
}
