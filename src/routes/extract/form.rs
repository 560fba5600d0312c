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
            "Send the upload as multipart/form-data (curl -F file=@cases.csv).",
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

/// A multipart form: the file (if any) and the text fields, in order.
pub struct Form {
    pub file: Option<Vec<u8>>,
    pub fields: Vec<(String, String)>,
}

/// Reads a multipart form: `file` up to `file_limit` bytes (413
/// `file_too_large`), each other field up to 64 KiB, trimmed; 408
/// `body_timeout` when nothing arrives for `stall`.
pub async fn read_form(
    mut form: Multipart,
    file_limit: usize,
    stall: std::time::Duration,
) -> Result<Form, ApiError> {
    use tokio::time::timeout;
    let mut out = Form {
        file: None,
        fields: Vec::new(),
    };
    let mut parts = 0;
    while let Some(field) = timeout(stall, form.next())
        .await
        .map_err(|_| stalled(stall))?
    {
        let mut field = field.map_err(multipart_error)?;
        parts += 1;
        if parts > MAX_FORM_PARTS {
            return Err(ApiError::new(
                ErrorCode::InvalidBody,
                format!("The form has more than {MAX_FORM_PARTS} parts."),
            ));
        }
        let name = field.name().unwrap_or_default().to_string();
        let limit = if name == "file" {
            file_limit
        } else {
            MAX_FORM_FIELD_BYTES
        };
        let mut value = Vec::new();
        while let Some(chunk) = timeout(stall, field.next())
            .await
            .map_err(|_| stalled(stall))?
        {
            let chunk = chunk.map_err(multipart_error)?;
            if value.len() + chunk.len() > limit {
                return Err(if name == "file" {
                    ApiError::new(
                        ErrorCode::FileTooLarge,
                        format!("The file exceeds the limit of {limit} bytes."),
                    )
                } else {
                    ApiError::new(
                        ErrorCode::InvalidBody,
                        format!(
                            "The form field {:?} is longer than {limit} bytes.",
                            crate::error::excerpt(&name)
                        ),
                    )
                });
            }
            value.extend_from_slice(&chunk);
        }
        if name == "file" {
            out.file = Some(value);
        } else {
            out.fields
                .push((name, String::from_utf8_lossy(&value).trim().to_string()));
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
    while let Some(field) = timeout(stall, form.next())
        .await
        .map_err(|_| stalled(stall))?
    {
        let mut field = field.map_err(multipart_error)?;
        parts += 1;
        if parts > MAX_FORM_PARTS {
            return Err(ApiError::new(
                ErrorCode::InvalidBody,
                format!("The form has more than {MAX_FORM_PARTS} parts."),
            ));
        }
        let name = field.name().unwrap_or_default().to_string();
        if name == "file" {
            if out.file.is_some() {
                return Err(ApiError::new(
                    ErrorCode::InvalidBody,
                    "The form has more than one `file` part: send one file per upload.",
                ));
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
        let mut value = Vec::new();
        while let Some(chunk) = timeout(stall, field.next())
            .await
            .map_err(|_| stalled(stall))?
        {
            let chunk = chunk.map_err(multipart_error)?;
            if value.len() + chunk.len() > MAX_FORM_FIELD_BYTES {
                return Err(ApiError::new(
                    ErrorCode::InvalidBody,
                    format!(
                        "The form field {:?} is longer than {MAX_FORM_FIELD_BYTES} bytes.",
                        crate::error::excerpt(&name)
                    ),
                ));
            }
            value.extend_from_slice(&chunk);
        }
        out.fields
            .push((name, String::from_utf8_lossy(&value).trim().to_string()));
    }
    Ok(out)
}
