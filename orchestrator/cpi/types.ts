// The CPI interface (DESIGN.md §5): BOSH's method set, with the wire names and argument order
// of BOSH's external CPI protocol, so a request `{method, arguments}` maps onto one call.

/** BOSH's networks hash: `{<name>: {type, ip, netmask, gateway, cloud_properties, default}}`. */
export interface NetworkSpec {
  type?: 'manual' | 'dynamic' | 'vip' | undefined;
  ip?: string | undefined;
  netmask?: string | undefined;
  gateway?: string | undefined;
  dns?: string[] | undefined;
  default?: string[] | undefined;
  cloud_properties?: Record<string, unknown> | undefined;
}
export type Networks = Record<string, NetworkSpec>;

export type CloudProperties = Record<string, unknown>;
export type VmEnv = Record<string, unknown>;
export type VmMetadata = Record<string, string>;

export interface CpiInfo {
  api_version: number;
  stemcell_formats: string[];
}

/** What every CPI implements. Methods reject with CpiError subclasses (errors.ts). */
export interface Cpi {
  info(): Promise<CpiInfo>;
  create_stemcell(image_path: string, cloud_properties: CloudProperties): Promise<string>;
  delete_stemcell(stemcell_cid: string): Promise<null>;
  create_vm(
    agent_id: string,
    stemcell_cid: string,
    cloud_properties: CloudProperties,
    networks: Networks,
    disk_cids: string[],
    env: VmEnv,
  ): Promise<string>;
  delete_vm(vm_cid: string): Promise<null>;
  has_vm(vm_cid: string): Promise<boolean>;
  reboot_vm(vm_cid: string): Promise<null>;
  set_vm_metadata(vm_cid: string, metadata: VmMetadata): Promise<null>;
  create_disk(size_mb: number, cloud_properties: CloudProperties, vm_cid: string | null): Promise<string>;
  attach_disk(vm_cid: string, disk_cid: string): Promise<null>;
  detach_disk(vm_cid: string, disk_cid: string): Promise<null>;
  delete_disk(disk_cid: string): Promise<null>;
  has_disk(disk_cid: string): Promise<boolean>;
  /**
   * Not in BOSH's set: the command line, run on the director's host, of `argv` (a login shell
   * when empty) inside the VM — for CPIs whose VMs have no sshd of their own (`ingot ssh`).
   */
  shell_argv?(vm_cid: string, argv: string[]): Promise<string[]>;
}

export type CpiMethod = keyof Cpi;

/** Builds a CPI from its parsed-by-itself config file contents. */
export type CpiFactory = (config: unknown, configFile: string) => Cpi;

/** The BOSH external-CPI response on stdout. */
export interface ExternalResponse {
  result: unknown;
  error: { type: string; message: string; ok_to_retry: boolean } | null;
  log: string;
}
