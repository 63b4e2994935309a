//! The remote picture on the GPU. [`VideoResources`] (pipeline, bind group layout, sampler,
//! the three plane textures) lives in egui-wgpu's callback resources, created once at start;
//! each frame the UI adds a [`VideoCallback`] whose `prepare()` uploads a new picture, if
//! there is one, and whose `paint()` draws the last uploaded one. YUV→RGB happens in the
//! fragment shader (`yuv.wgsl`); the CPU only copies planes.

use eframe::egui;
use egui_wgpu::wgpu;
use sightline_media::Yuv420Frame;
use std::sync::Arc;

/// MSAA sample count of the window's render pass; eframe's default (`multisampling: 0`) gives
/// one sample, and the pipeline must match the pass it draws into.
pub const MSAA_SAMPLES: u32 = 1;

/// Shader parameters: `[u_min, v_min, u_max, v_max]` of the visible part of the picture.
type Params = [f32; 4];

/// GPU state shared by every frame's callback.
#[derive(Debug)]
pub struct VideoResources {
    pipeline: wgpu::RenderPipeline,
    layout: wgpu::BindGroupLayout,
    sampler: wgpu::Sampler,
    params: wgpu::Buffer,
    planes: Option<Planes>,
    /// The last picture size refused, so the warning is logged once per size.
    refused: Option<(u32, u32)>,
}

/// Three plane textures of one picture size and the bind group that samples them.
#[derive(Debug)]
struct Planes {
    size: (u32, u32),
    y: wgpu::Texture,
    u: wgpu::Texture,
    v: wgpu::Texture,
    bind_group: wgpu::BindGroup,
}

impl VideoResources {
    /// Builds the pipeline for the window's surface format.
    pub fn new(device: &wgpu::Device, target_format: wgpu::TextureFormat) -> Self {
        let shader = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("sightline-yuv"),
            source: wgpu::ShaderSource::Wgsl(include_str!("yuv.wgsl").into()),
        });
        let plane = |binding| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::FRAGMENT,
            ty: wgpu::BindingType::Texture {
                multisampled: false,
                sample_type: wgpu::TextureSampleType::Float { filterable: true },
                view_dimension: wgpu::TextureViewDimension::D2,
            },
            count: None,
        };
        let layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("sightline-yuv"),
            entries: &[
                wgpu::BindGroupLayoutEntry {
                    binding: 0,
                    visibility: wgpu::ShaderStages::VERTEX,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Uniform,
                        has_dynamic_offset: false,
                        min_binding_size: wgpu::BufferSize::new(
                            std::mem::size_of::<Params>() as u64
                        ),
                    },
                    count: None,
                },
                wgpu::BindGroupLayoutEntry {
                    binding: 1,
                    visibility: wgpu::ShaderStages::FRAGMENT,
                    ty: wgpu::BindingType::Sampler(wgpu::SamplerBindingType::Filtering),
                    count: None,
                },
                plane(2),
                plane(3),
                plane(4),
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("sightline-yuv"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
            label: Some("sightline-yuv"),
            layout: Some(&pipeline_layout),
            vertex: wgpu::VertexState {
                module: &shader,
                entry_point: Some("vs_main"),
                compilation_options: wgpu::PipelineCompilationOptions::default(),
                buffers: &[],
            },
            primitive: wgpu::PrimitiveState {
                topology: wgpu::PrimitiveTopology::TriangleStrip,
                ..Default::default()
            },
            depth_stencil: None,
            multisample: wgpu::MultisampleState {
                count: MSAA_SAMPLES,
                ..Default::default()
            },
            fragment: Some(wgpu::FragmentState {
                module: &shader,
                entry_point: Some(if target_format.is_srgb() {
                    "fs_linear_framebuffer"
                } else {
                    "fs_gamma_framebuffer"
                }),
                compilation_options: wgpu::PipelineCompilationOptions::default(),
                targets: &[Some(wgpu::ColorTargetState {
                    format: target_format,
                    blend: None,
                    write_mask: wgpu::ColorWrites::ALL,
                })],
            }),
            multiview_mask: None,
            cache: None,
        });
        let sampler = device.create_sampler(&wgpu::SamplerDescriptor {
            label: Some("sightline-yuv"),
            address_mode_u: wgpu::AddressMode::ClampToEdge,
            address_mode_v: wgpu::AddressMode::ClampToEdge,
            mag_filter: wgpu::FilterMode::Linear,
            min_filter: wgpu::FilterMode::Linear,
            ..Default::default()
        });
        let params = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("sightline-yuv-params"),
            size: std::mem::size_of::<Params>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Self {
            pipeline,
            layout,
            sampler,
            params,
            planes: None,
            refused: None,
        }
    }

    /// Copies a picture into the plane textures, re-creating them when the size changed.
    /// (Public for the benchmark of the upload stage.)
    pub fn upload(&mut self, device: &wgpu::Device, queue: &wgpu::Queue, frame: &Yuv420Frame) {
        let size = (frame.width, frame.height);
        if let Err(why) = check_frame(frame, device.limits().max_texture_dimension_2d) {
            if self.refused != Some(size) {
                tracing::warn!(width = size.0, height = size.1, %why, "not drawing picture");
                self.refused = Some(size);
            }
            return;
        }
        if self.planes.as_ref().is_none_or(|p| p.size != size) {
            self.planes = Some(self.create_planes(device, frame));
        }
        let Some(planes) = &self.planes else { return };
        let (cw, ch) = (frame.chroma_width(), frame.chroma_height());
        write_plane(
            queue,
            &planes.y,
            &frame.y,
            frame.y_stride,
            frame.width,
            frame.height,
        );
        write_plane(queue, &planes.u, &frame.u, frame.uv_stride, cw, ch);
        write_plane(queue, &planes.v, &frame.v, frame.uv_stride, cw, ch);
    }

    fn create_planes(&self, device: &wgpu::Device, frame: &Yuv420Frame) -> Planes {
        let texture = |label, width, height| {
            device.create_texture(&wgpu::TextureDescriptor {
                label: Some(label),
                size: wgpu::Extent3d {
                    width,
                    height,
                    depth_or_array_layers: 1,
                },
                mip_level_count: 1,
                sample_count: 1,
                dimension: wgpu::TextureDimension::D2,
                format: wgpu::TextureFormat::R8Unorm,
                usage: wgpu::TextureUsages::TEXTURE_BINDING | wgpu::TextureUsages::COPY_DST,
                view_formats: &[],
            })
        };
        let y = texture("sightline-plane-y", frame.width, frame.height);
        let u = texture(
            "sightline-plane-u",
            frame.chroma_width(),
            frame.chroma_height(),
        );
        let v = texture(
            "sightline-plane-v",
            frame.chroma_width(),
            frame.chroma_height(),
        );
        let views = [&y, &u, &v].map(|t| t.create_view(&wgpu::TextureViewDescriptor::default()));
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("sightline-yuv"),
            layout: &self.layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: self.params.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: wgpu::BindingResource::Sampler(&self.sampler),
                },
                wgpu::BindGroupEntry {
                    binding: 2,
                    resource: wgpu::BindingResource::TextureView(&views[0]),
                },
                wgpu::BindGroupEntry {
                    binding: 3,
                    resource: wgpu::BindingResource::TextureView(&views[1]),
                },
                wgpu::BindGroupEntry {
                    binding: 4,
                    resource: wgpu::BindingResource::TextureView(&views[2]),
                },
            ],
        });
        Planes {
            size: (frame.width, frame.height),
            y,
            u,
            v,
            bind_group,
        }
    }
}

/// Uploads one plane. `queue.write_texture` takes any row pitch (only buffer-to-texture
/// copies need 256-byte rows), so the decoder's stride goes through as it is.
fn write_plane(
    queue: &wgpu::Queue,
    texture: &wgpu::Texture,
    data: &[u8],
    stride: usize,
    width: u32,
    height: u32,
) {
    // check_frame proved stride fits in u32 and the data covers every row.
    let Ok(bytes_per_row) = u32::try_from(stride) else {
        return;
    };
    queue.write_texture(
        wgpu::TexelCopyTextureInfo {
            texture,
            mip_level: 0,
            origin: wgpu::Origin3d::ZERO,
            aspect: wgpu::TextureAspect::All,
        },
        data,
        wgpu::TexelCopyBufferLayout {
            offset: 0,
            bytes_per_row: Some(bytes_per_row),
            rows_per_image: Some(height),
        },
        wgpu::Extent3d {
            width,
            height,
            depth_or_array_layers: 1,
        },
    );
}

/// Bytes a plane must hold: every row but the last at full stride, the last at its width.
fn plane_bytes(stride: usize, width: u32, height: u32) -> Option<usize> {
    let rows = usize::try_from(height).ok()?;
    let width = usize::try_from(width).ok()?;
    if rows == 0 {
        return Some(0);
    }
    stride.checked_mul(rows - 1)?.checked_add(width)
}

/// Refuses pictures the GPU would reject: wgpu treats a bad copy as a fatal device error,
/// so sizes and strides are checked here first.
pub fn check_frame(f: &Yuv420Frame, max_dimension: u32) -> Result<(), String> {
    if f.width == 0 || f.height == 0 {
        return Err("empty picture".into());
    }
    if f.width > max_dimension || f.height > max_dimension {
        return Err(format!(
            "larger than the GPU's {max_dimension}-pixel texture limit"
        ));
    }
    let planes = [
        ("luma", &f.y, f.y_stride, f.width, f.height),
        ("Cb", &f.u, f.uv_stride, f.chroma_width(), f.chroma_height()),
        ("Cr", &f.v, f.uv_stride, f.chroma_width(), f.chroma_height()),
    ];
    for (name, data, stride, width, height) in planes {
        if u32::try_from(stride).is_err() || (stride as u64) < u64::from(width) {
            return Err(format!(
                "{name} stride {stride} is shorter than a row of {width}"
            ));
        }
        let need = plane_bytes(stride, width, height)
            .ok_or_else(|| format!("{name} plane size overflows"))?;
        if data.len() < need {
            return Err(format!(
                "{name} plane has {} bytes, needs {need}",
                data.len()
            ));
        }
    }
    Ok(())
}

/// One frame's drawing of the remote picture.
#[derive(Debug, Clone)]
pub struct VideoCallback {
    /// A new picture to upload before drawing, if one arrived since the last frame.
    pub upload: Option<Arc<Yuv420Frame>>,
    /// Texture coordinates of the part being drawn (see `geometry::visible_part`).
    pub uv: [f32; 4],
}

impl VideoCallback {
    /// The paint callback for egui, drawing into `rect` (the visible part of the picture).
    pub fn into_shape(self, rect: egui::Rect) -> egui::Shape {
        egui::Shape::Callback(egui_wgpu::Callback::new_paint_callback(rect, self))
    }
}

impl egui_wgpu::CallbackTrait for VideoCallback {
    fn prepare(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        _screen: &egui_wgpu::ScreenDescriptor,
        _encoder: &mut wgpu::CommandEncoder,
        resources: &mut egui_wgpu::CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        let Some(video) = resources.get_mut::<VideoResources>() else {
            return Vec::new();
        };
        if let Some(frame) = &self.upload {
            video.upload(device, queue, frame);
        }
        queue.write_buffer(&video.params, 0, bytemuck::cast_slice(&self.uv));
        Vec::new()
    }

    fn paint(
        &self,
        _info: egui::PaintCallbackInfo,
        pass: &mut wgpu::RenderPass<'static>,
        resources: &egui_wgpu::CallbackResources,
    ) {
        let Some(video) = resources.get::<VideoResources>() else {
            return;
        };
        let Some(planes) = &video.planes else { return };
        pass.set_pipeline(&video.pipeline);
        pass.set_bind_group(0, &planes.bind_group, &[]);
        pass.draw(0..4, 0..1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(width: u32, height: u32, y_stride: usize, uv_stride: usize) -> Yuv420Frame {
        let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
        Yuv420Frame {
            width,
            height,
            y: vec![16; y_stride * height as usize],
            y_stride,
            u: vec![128; uv_stride * ch as usize],
            v: vec![128; uv_stride * ch as usize],
            uv_stride: uv_stride.max(cw as usize),
        }
    }

    #[test]
    fn padded_strides_are_accepted() {
        assert!(check_frame(&frame(1920, 1080, 1984, 992), 8192).is_ok());
        // Odd sizes: chroma rounds up.
        assert!(check_frame(&frame(333, 99, 333, 167), 8192).is_ok());
    }

    #[test]
    fn a_last_row_without_padding_is_enough() {
        let mut f = frame(100, 10, 128, 64);
        f.y.truncate(128 * 9 + 100);
        assert!(check_frame(&f, 8192).is_ok());
        f.y.pop();
        assert!(check_frame(&f, 8192).is_err());
    }

    #[test]
    fn bad_pictures_are_refused() {
        assert!(check_frame(&frame(0, 10, 0, 0), 8192).is_err());
        assert!(check_frame(&frame(100, 100, 100, 50), 64).is_err());
        let mut f = frame(100, 100, 100, 50);
        f.y_stride = 99;
        assert!(check_frame(&f, 8192).is_err());
        let mut f = frame(100, 100, 100, 50);
        f.v.truncate(10);
        assert!(check_frame(&f, 8192).is_err());
    }
}
