// Deployment manifests and cloud-configs: parse, apply ops files, interpolate ((vars)),
// validate against the cloud-config and job specs. The usual order:
//
//   const base = readYaml(text, 'local.yml');
//   const patched = applyOps(base, opsFiles.map((o) => readYaml(o.text, o.file)));
//   const interpolated = await interpolate(patched, parseVarFlags(flags), store);
//   const deployment = checkDeployment(interpolated, parseCloudConfig(cc, 'cloud.yml'), specs);
//
// checkDeployment reports the manifest's own problems and its cross-checks together;
// parseManifest + validateDeployment do the same in two steps.
export type * from './types.ts';
export { ManifestError, formatProblem } from './errors.ts';
export { readYaml, locate, isPlainMap, setKey } from './yaml-source.ts';
export { parseManifest, readManifest, manifestSchema, inFlight, parseMaxInFlight, parseWatchTime } from './deployment-manifest.ts';
export { parseCloudConfig, cloudConfigSchema } from './cloud-config.ts';
export { applyOps, parseVarFlags, parsePointer } from './ops-files.ts';
export { interpolate, referencedVariables } from './interpolation.ts';
export { MemoryVariableStore, generatePassword, generateRsa, generateSsh } from './variables.ts';
export { generateCertificate, type CertificateRequest } from './certificates.ts';
export { resolveLinks, findSpec } from './links.ts';
export { validateDeployment, checkDeployment, type PreviousAzs } from './validate.ts';
