//! A multipart form: its file and its text fields, within limits.

use actix_multipart::{Multipart, MultipartError};
use futures_util::StreamExt;

use crate::error::{ApiError, ErrorCode, FieldError};
use crate::ingest::input::stalled;

/// Longest text form field.
const MAX_FORM_FIELD_BYTES: usize = 64 * 1024;

/// Most parts a form may have (the uploaders take at most a dozen): with
/// [`MAX_FORM_FIELD_BYTES`], what a form holds besides its file stays small.
const MAX_FORM_PARTS: usize = 32;

fn multipart_error(e: MultipartError) -> ApiError {
    match e {
        MultipartError::ContentTypeMissing
        | MultipartError::ContentTypeParse
        | MultipartError::ContentTypeIncompatible => ApiError::new(
            ErrorCode::UnsupportedMediaType,
            "Send the upload as multipart/form-data (curl -F file=@your.csv).",
        ),
        other => ApiError::new(
            ErrorCode::InvalidBody,
            format!("The form could not be read: {other}"),
        ),
    }
}

/// A form field read as a boolean (`true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`).
pub fn truthy(field: &str, value: &str) -> Result<bool, ApiError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" | "" => Ok(false),
        other => Err(ApiError::validation(
            ErrorCode::ValidationFailed,
            vec![FieldError::field(
                field,
                ErrorCode::InvalidEnum,
                format!(
                    "{field} must be true or false, not {:?}",
                    crate::error::excerpt(other)
                ),
            )],
        )),
    }
}

/// The form's next part (counting it against [`MAX_FORM_PARTS`]).
async fn next_part(
    form: &mut Multipart,
    parts: &mut usize,
    stall: std::time::Duration,
) -> Result<Option<actix_multipart::Field>, ApiError> {
    let Some(field) = tokio::time::timeout(stall, form.next())
        .await
        .map_err(|_| stalled(stall))?
    else {
        return Ok(None);
    };
    let field = field.map_err(multipart_error)?;
    *parts += 1;
    if *parts > MAX_FORM_PARTS {
        return Err(ApiError::new(
            ErrorCode::InvalidBody,
            format!("The form has more than {MAX_FORM_PARTS} parts."),
        ));
    }
    Ok(Some(field))
}

/// A text field's value, up to [`MAX_FORM_FIELD_BYTES`], trimmed.
async fn text_field(
    field: &mut actix_multipart::Field,
    name: &str,
    stall: std::time::Duration,
) -> Result<String, ApiError> {
    let value = field_bytes(field, stall, MAX_FORM_FIELD_BYTES, || {
        ApiError::new(
            ErrorCode::InvalidBody,
            format!(
                "The form field {:?} is longer than {MAX_FORM_FIELD_BYTES} bytes.",
                crate::error::excerpt(name)
            ),
        )
    })
    .await?;
    Ok(String::from_utf8_lossy(&value).trim().to_string())
}

/// A field's bytes, up to `limit` (`too_long` past it).
async fn field_bytes(
    field: &mut actix_multipart::Field,
    stall: std::time::Duration,
    limit: usize,
    too_long: impl Fn() -> ApiError,
) -> Result<Vec<u8>, ApiError> {
    let mut value = Vec::new();
    while let Some(chunk) = tokio::time::timeout(stall, field.next())
        .await
        .map_err(|_| stalled(stall))?
    {
        let chunk = chunk.map_err(multipart_error)?;
        if value.len() + chunk.len() > limit {
            return Err(too_long());
        }
        value.extend_from_slice(&chunk);
    }
    Ok(value)
}

/// A multipart form: the file (if any) and the text fields, in order.
pub struct Form {
    pub file: Option<Vec<u8>>,
    pub fields: Vec<(String, String)>,
}

/// The 400 of a form with a second `file` part (never read in its
/// place, nor ignored).
fn multiple_files() -> ApiError {
    ApiError::new(
        ErrorCode::MultipleFiles,
        "The form has more than one `file` part: send one file per upload.",
    )
}

/// Reads a multipart form: `file` up to `file_limit` bytes (413
/// `file_too_large`), one `file` part (400 `multiple_files`), each other field up to 64 KiB, trimmed; 408
/// `body_timeout` when nothing arrives for `stall`.
pub async fn read_form(
    mut form: Multipart,
    file_limit: usize,
    stall: std::time::Duration,
) -> Result<Form, ApiError> {
    let mut out = Form {
        file: None,
        fields: Vec::new(),
    };
    let mut parts = 0;
    while let Some(mut field) = next_part(&mut form, &mut parts, stall).await? {
        let name = field.name().unwrap_or_default().to_string();
        if name == "file" {
            if out.file.is_some() {
                return Err(multiple_files());
            }
            let file = field_bytes(&mut field, stall, file_limit, || {
                ApiError::new(
                    ErrorCode::FileTooLarge,
                    format!("The file exceeds the limit of {file_limit} bytes."),
                )
            })
            .await?;
            out.file = Some(file);
        } else {
            let value = text_field(&mut field, &name, stall).await?;
            out.fields.push((name, value));
        }
    }
    Ok(out)
}

/// A multipart form whose file went to disk as it arrived.
pub struct DiskForm {
    /// The file and the name the client gave it.
    pub file: Option<(crate::ingest::imports::UploadedFile, String)>,
    pub fields: Vec<(String, String)>,
}

/// Reads a multipart form, writing its `file` part to a new file in `dir`
/// (never held in memory): up to `file_limit` bytes (413
/// `file_too_large`); one `file` part (400 `multiple_files`); each other
/// field up to 64 KiB, trimmed; 408 `body_timeout` when nothing arrives
/// for `stall`.
pub async fn read_form_to_disk(
    mut form: Multipart,
    dir: &std::path::Path,
    file_limit: u64,
    stall: std::time::Duration,
) -> Result<DiskForm, ApiError> {
    use tokio::io::AsyncWriteExt;
    use tokio::time::timeout;
    let mut out = DiskForm {
        file: None,
        fields: Vec::new(),
    };
    let mut parts = 0;
    while let Some(mut field) = next_part(&mut form, &mut parts, stall).await? {
        let name = field.name().unwrap_or_default().to_string();
        if name == "file" {
            if out.file.is_some() {
                return Err(multiple_files());
            }
            let file_name = field
                .content_disposition()
                .and_then(|d| d.get_filename())
                .map(|n| n.chars().filter(|c| !c.is_control()).take(255).collect())
                .unwrap_or_default();
            std::fs::create_dir_all(dir).map_err(|e| {
                ApiError::internal(anyhow::anyhow!("creating {}: {e}", dir.display()))
            })?;
            let path = dir.join(format!("{}.upload", uuid::Uuid::new_v4()));
            let upload = crate::ingest::imports::UploadedFile { path };
            let mut disk = tokio::fs::File::create(&upload.path)
                .await
                .map_err(|e| ApiError::internal(anyhow::anyhow!("creating the upload: {e}")))?;
            let mut written = 0u64;
            while let Some(chunk) = timeout(stall, field.next())
                .await
                .map_err(|_| stalled(stall))?
            {
                let chunk = chunk.map_err(multipart_error)?;
                written += chunk.len() as u64;
                if written > file_limit {
                    return Err(ApiError::new(
                        ErrorCode::FileTooLarge,
                        format!("The file exceeds the limit of {file_limit} bytes."),
                    ));
                }
                disk.write_all(&chunk)
                    .await
                    .map_err(|e| ApiError::internal(anyhow::anyhow!("writing the upload: {e}")))?;
            }
            disk.flush()
                .await
                .map_err(|e| ApiError::internal(anyhow::anyhow!("writing the upload: {e}")))?;
            out.file = Some((upload, file_name));
            continue;
        }
        let value = text_field(&mut field, &name, stall).await?;
        out.fields.push((name, value));
    }
    Ok(out)
}
