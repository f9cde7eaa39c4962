import { chooseBoot, type BootChoiceConfig, type BootFileOverrides } from './boot-choice.js';
import {
  clientUuid,
  encodeEncapsulated,
  ip,
  MessageType,
  messageType,
  Opt,
  PxeOpt,
  textConstant,
  u8,
  u8Constant,
} from './options.js';
import { BOOTREQUEST, clientMac, replyTo, type DhcpPacket } from './packet.js';
import type { DhcpOutcome, RequestContext } from './types.js';

/** Option 43 of every PXE offer: discovery control 8 (made once; never modified). */
const PXE_NO_DISCOVERY = encodeEncapsulated(new Map([[PxeOpt.DISCOVERY_CONTROL, u8(8)]]));

/**
 * proxyDHCP (PXE spec 2.1, section 2.2.3): beside the network's own DHCP server, answer PXE and iPXE
 * clients with boot information only — never an address. On port 67 a DISCOVER gets a proxy OFFER;
 * on port 4011 a REQUEST gets an ACK (UEFI firmware and iPXE ask there after taking an address).
 */
export function handleProxy(
  req: DhcpPacket,
  ctx: RequestContext,
  bootFor: (ctx: RequestContext) => BootChoiceConfig,
  overridesFor: (mac: string) => BootFileOverrides,
): DhcpOutcome {
  if (req.op !== BOOTREQUEST) return { ignore: 'not a request' };
  const mac = clientMac(req);
  if (!mac) return { ignore: 'not an Ethernet client' };
  const type = messageType(req);
  let replyType: number;
  if (ctx.port === 'pxe') {
    if (type !== MessageType.REQUEST && type !== MessageType.INFORM) return { ignore: `message type ${type} on port 4011`, mac };
    replyType = MessageType.ACK;
  } else {
    // Requests on 67 are for the real DHCP server's address; boot information was in our OFFER.
    if (type !== MessageType.DISCOVER) return { ignore: `proxy mode answers only DISCOVER on port 67`, mac };
    replyType = MessageType.OFFER;
  }
  const choice = chooseBoot(req, bootFor(ctx), overridesFor(mac));
  if ('none' in choice) return { ignore: choice.none, mac };

  const reply = replyTo(req);
  // iPXE ignores a proxy offer that names a file but no next-server, so siaddr is always set.
  reply.siaddr = ctx.serverIp;
  reply.file = choice.file;
  reply.options.set(Opt.MESSAGE_TYPE, u8Constant(replyType));
  reply.options.set(Opt.SERVER_ID, ip(ctx.serverIp));
  reply.options.set(Opt.VENDOR_CLASS, textConstant(choice.vendorClass));
  const uuid = req.options.get(Opt.CLIENT_UUID);
  if (uuid && clientUuid(req)) reply.options.set(Opt.CLIENT_UUID, uuid);
  if (choice.vendorClass === 'PXEClient') {
    // Discovery control 8: no boot server discovery, no menu — download the file named here.
    reply.options.set(Opt.VENDOR_SPECIFIC, PXE_NO_DISCOVERY);
  }
  reply.options.set(Opt.BOOTFILE_NAME, textConstant(choice.file));
  return {
    reply,
    mac,
    // Port 4011 answers go straight back to the asking address; OFFERs are broadcast as the client has no address yet.
    to: ctx.port === 'pxe' ? { address: ctx.source.address, port: ctx.source.port } : undefined,
    event: {
      message: `proxy ${replyType === MessageType.OFFER ? 'offer' : 'ack'} on ${ctx.iface}${ctx.port === 'pxe' ? ':4011' : ''}: ${choice.file}`,
      reason: choice.reason,
      facts: choice.arch !== undefined ? { arch: String(choice.arch) } : {},
    },
  };
}
