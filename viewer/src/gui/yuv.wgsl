// The remote picture: three 8-bit planes (Y full size, Cb and Cr at half size each way),
// BT.709 limited range, converted to R'G'B' per fragment. Sampling is linear, so chroma is
// interpolated up to full size by the texture unit.

struct Params {
    // Texture coordinates of the quad's top-left and bottom-right corners: the visible part
    // of the picture when it is scrolled partly out of view.
    uv_min: vec2<f32>,
    uv_max: vec2<f32>,
};

@group(0) @binding(0) var<uniform> params: Params;
@group(0) @binding(1) var plane_sampler: sampler;
@group(0) @binding(2) var plane_y: texture_2d<f32>;
@group(0) @binding(3) var plane_u: texture_2d<f32>;
@group(0) @binding(4) var plane_v: texture_2d<f32>;

struct VertexOut {
    @builtin(position) position: vec4<f32>,
    @location(0) uv: vec2<f32>,
};

// A quad as a four-vertex triangle strip covering the viewport (egui sets the viewport to
// the callback's rectangle).
@vertex
fn vs_main(@builtin(vertex_index) index: u32) -> VertexOut {
    let corner = vec2<f32>(f32(index & 1u), f32(index >> 1u));
    var out: VertexOut;
    out.position = vec4<f32>(corner.x * 2.0 - 1.0, 1.0 - corner.y * 2.0, 0.0, 1.0);
    out.uv = mix(params.uv_min, params.uv_max, corner);
    return out;
}

fn bt709_limited_to_rgb(uv: vec2<f32>) -> vec3<f32> {
    // Limited range: luma 16..235, chroma 16..240 centred at 128 (of 255).
    let y = (textureSample(plane_y, plane_sampler, uv).r - 16.0 / 255.0) * (255.0 / 219.0);
    let cb = (textureSample(plane_u, plane_sampler, uv).r - 128.0 / 255.0) * (255.0 / 224.0);
    let cr = (textureSample(plane_v, plane_sampler, uv).r - 128.0 / 255.0) * (255.0 / 224.0);
    let rgb = vec3<f32>(
        y + 1.5748 * cr,
        y - 0.1873 * cb - 0.4681 * cr,
        y + 1.8556 * cb,
    );
    return clamp(rgb, vec3<f32>(0.0), vec3<f32>(1.0));
}

// For the usual non-sRGB surface: write the gamma-encoded values as they are.
@fragment
fn fs_gamma_framebuffer(in: VertexOut) -> @location(0) vec4<f32> {
    return vec4<f32>(bt709_limited_to_rgb(in.uv), 1.0);
}

// For an sRGB surface, which encodes on write: hand it linear values.
@fragment
fn fs_linear_framebuffer(in: VertexOut) -> @location(0) vec4<f32> {
    let c = bt709_limited_to_rgb(in.uv);
    let cutoff = c <= vec3<f32>(0.04045);
    let lower = c / 12.92;
    let higher = pow((c + 0.055) / 1.055, vec3<f32>(2.4));
    return vec4<f32>(select(higher, lower, cutoff), 1.0);
}
